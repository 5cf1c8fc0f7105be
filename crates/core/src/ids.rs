//! Prefixed, time-sortable identifiers (`sub_01J…`). The ULID part sorts by
//! creation time, so an id doubles as a keyset-pagination cursor.

use std::sync::Mutex;

/// Ids made in one process are strictly increasing, even within one
/// millisecond, so a cursor never skips a row created by the same replica.
static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new subscription id: `sub_` followed by a ULID.
pub fn subscription_id() -> String {
    let mut guard = GENERATOR.lock().unwrap_or_else(|p| p.into_inner());
    let generator = guard.get_or_insert_with(ulid::Generator::new);
    // Overflow needs 2^80 ids in one millisecond; fall back to a fresh ULID.
    let id = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    format!("sub_{id}")
}

/// Whether `s` has the shape of a subscription id (cheap check before a lookup).
pub fn is_subscription_id(s: &str) -> bool {
    s.strip_prefix("sub_")
        .is_some_and(|rest| rest.len() == 26 && ulid::Ulid::from_string(rest).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_strictly_increasing() {
        let ids: Vec<String> = (0..1000).map(|_| subscription_id()).collect();
        assert!(ids.iter().all(|id| is_subscription_id(id)));
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(!is_subscription_id("sub_nope"));
        assert!(!is_subscription_id("whk_01J0000000000000000000000"));
    }
}
