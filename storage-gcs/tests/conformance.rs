//! The conformance kit against fake-gcs-server, which `cargo xtask test`
//! installs and starts on 127.0.0.1. Its known gaps are listed with the
//! reason; they are the emulator's, not the backend's (which declares
//! every capability when it has a service-account key).

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use storage_core::conformance::Fixture;

async fn setup() -> Fixture {
    Fixture::new(support::fake_gcs())
}

storage_core::conformance_suite!(
    setup,
    gaps = [
        (
            "tampered_presigned_url_is_refused",
            "fake-gcs-server routes signed URLs but never verifies their signature (the signature is checked against Google's Python client and the public key in tests/signed_urls.rs)"
        ),
        (
            "expired_presigned_url_is_refused",
            "fake-gcs-server never checks a signed URL's expiry"
        ),
        (
            "presigned_url_used_with_another_method_is_refused",
            "fake-gcs-server never verifies a signed URL, so any method is served"
        ),
        (
            "presigned_put_with_another_content_type_is_refused",
            "fake-gcs-server never verifies a signed URL's signed headers"
        ),
    ]
);
