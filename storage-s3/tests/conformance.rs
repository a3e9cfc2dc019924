//! The conformance kit against two S3-compatible servers that `cargo xtask
//! test` installs and starts on 127.0.0.1: moto and s3s-fs. Each server's
//! known gaps are listed with the reason; they are the server's, not the
//! backend's (which declares every capability).

#![cfg(feature = "test-servers")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail by panicking.

mod support;

use storage_core::conformance::Fixture;
use storage_s3::{S3Config, S3Storage};
use support::var;

fn store(server: &str, endpoint: &str, access_key: &str, secret: &str) -> S3Storage {
    let mut config = S3Config::new(var("STORAGE_TEST_S3_BUCKET"))
        .with_name(server)
        .with_endpoint(endpoint, true)
        .with_region("us-east-1")
        .with_credentials(access_key, secret);
    // moto now and then answers 500 to concurrent writes of one key (its
    // in-memory backend races there); a transient 5xx is what retries are
    // for, and three keep the concurrency cases from failing on it.
    config.max_retries = 3;
    S3Storage::new(config).unwrap()
}

mod moto {
    use super::*;

    async fn setup() -> Fixture {
        Fixture::new(store(
            "moto",
            &var("STORAGE_TEST_MOTO_ENDPOINT"),
            "moto-key",
            "moto-secret",
        ))
    }

    storage_core::conformance_suite!(
        setup,
        gaps = [
            (
                "tampered_presigned_url_is_refused",
                "moto (default mode) checks no signature, so it serves altered URLs"
            ),
            (
                "expired_presigned_url_is_refused",
                "moto (default mode) checks no signature or expiry"
            ),
            (
                "presigned_url_used_with_another_method_is_refused",
                "moto (default mode) checks no signature, so any method is accepted"
            ),
            (
                "presigned_put_with_another_content_type_is_refused",
                "moto (default mode) checks no signed headers"
            ),
        ]
    );
}

mod s3s_fs {
    use super::*;

    async fn setup() -> Fixture {
        Fixture::new(store(
            "s3s-fs",
            &var("STORAGE_TEST_S3S_ENDPOINT"),
            &var("STORAGE_TEST_S3S_ACCESS_KEY"),
            &var("STORAGE_TEST_S3S_SECRET_KEY"),
        ))
    }

    storage_core::conformance_suite!(
        setup,
        gaps = [
            (
                "get_if_match_with_other_etag_fails_with_precondition_failed",
                "s3s-fs ignores If-Match on GET (answers 200)"
            ),
            (
                "get_if_none_match_with_current_etag_is_not_modified",
                "s3s-fs ignores If-None-Match on GET (answers 200)"
            ),
            (
                "concurrent_create_new_has_exactly_one_winner",
                "race: s3s-fs checks If-None-Match: * and then writes, not atomically, so racing creators can both win"
            ),
            (
                "delete_leaves_children_and_siblings",
                "s3s-fs stores objects as files: `a` and `a/b` cannot both exist (500)"
            ),
            (
                "list_with_delimiter_folds_common_prefixes_once",
                "s3s-fs stores objects as files: `a` and `a/x` cannot both exist (500)"
            ),
            (
                "object_and_folder_of_the_same_name_coexist",
                "s3s-fs stores objects as files: `a` and `a/b` cannot both exist (500)"
            ),
            (
                "nested_write_creates_no_parent_object",
                "s3s-fs answers HEAD on a folder with 500 instead of 404"
            ),
            (
                "suffix_range_longer_than_the_object_returns_it_all",
                "s3s-fs answers 500 to a suffix range longer than the object (S3 returns the whole object)"
            ),
        ]
    );
}
