//! Fuzz target: `CallbackUrl::parse` and `UrlPolicy::check` on arbitrary
//! UTF-8. Both run on untrusted request bodies, so a panic here is a 500 in
//! the API; the asserts are the invariants the property tests also hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_core::CallbackUrl;
use switchboard_core::policy::UrlPolicy;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = CallbackUrl::parse(raw) else {
        return;
    };
    // Accepted URLs are held normalized, and normalizing is a fixed point.
    assert_eq!(CallbackUrl::parse(url.as_str()).as_ref(), Ok(&url));
    // Every policy variant must answer without panicking.
    let strict = UrlPolicy::default();
    let relaxed = UrlPolicy {
        allow_http: true,
        allow_private: true,
        ..UrlPolicy::default()
    };
    let strict_ok = strict.check(&url).is_ok();
    let relaxed_ok = relaxed.check(&url).is_ok();
    // Relaxing the policy never refuses what the strict one accepted.
    assert!(!strict_ok || relaxed_ok, "relaxed policy refused {raw:?}");
});
