//! The conformance kit against fake-gcs-server, which `cargo xtask test`
//! installs and starts on 127.0.0.1. Its known gaps are listed with the
//! reason; they are the emulator's, not the backend's (which declares
//! every capability when it has a service-account key).

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use storage_core::conformance::Fixture;

// fake-gcs-server's other gaps fail no case, so they are not listed below,
// and what they leave untested rests on Google's documentation:
// - it checks no token, so credentials are exercised (a self-signed JWT is
//   made and sent on every request) but not verified;
// - it enforces `ifGenerationMatch` only on `uploadType=multipart`, so a
//   create-only or replace-if-match put longer than `chunk_size` (a
//   resumable upload, conditional at its start) is not checked here; the
//   kit's conditional cases use small bodies, which are checked;
// - its resumable status query finalizes the upload, so resumption is
//   tested on gcp-storage-emulator (tests/resumable.rs);
// - it answers DELETE with 200 where GCS answers 204: both are success.

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
