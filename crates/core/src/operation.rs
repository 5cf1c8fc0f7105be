//! The operation vocabulary: what kind of change a journal entry records,
//! the state it is in, the native steps it made, and what a reconciliation
//! found. Each enum's wire name (journal rows, API views, OpenAPI document)
//! is written once, in the `wire_enum!` list below; everything else uses
//! the variants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Declares an enum whose serde name, `as_str` and `parse` all come from
/// one `Variant = "wire"` list, so the three cannot disagree (also used for
/// [`crate::SubscriptionStatus`]). The wire
/// name is taken as a `tt`, not a `literal`: a `literal` fragment reaches
/// the derives wrapped in an invisible group, which serde reads but
/// utoipa's `ToSchema` does not (it would show the variant names).
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $wire:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $wire)] $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $wire,)+
                }
            }

            /// The variant of a wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use wire_enum;

wire_enum! {
    /// What a journal entry changes.
    OperationKind {
        /// A new subscription and its native resources.
        Create = "create",
        /// A merge patch of the desired state.
        Update = "update",
        /// Switching deliveries on.
        Enable = "enable",
        /// Switching deliveries off.
        Disable = "disable",
        /// A new signing secret on every native resource.
        RotateSecret = "rotate_secret",
        /// Removing every native resource, then the subscription.
        Delete = "delete",
        /// Comparing with the provider and repairing drift.
        Reconcile = "reconcile",
        /// The sweep's re-verification of steps whose outcome was unknown.
        Verify = "verify",
    }
}

wire_enum! {
    /// Where a journal entry stands.
    OperationState {
        /// Started and not closed (its lease says whether its process lives).
        Running = "running",
        /// Applied and stored.
        Succeeded = "succeeded",
        /// Refused, or could not be undone or stored; see its error.
        Failed = "failed",
        /// An upstream step failed and every step already made was undone.
        Undone = "undone",
        /// Finished by recovery after its process died.
        Recovered = "recovered",
    }
}

wire_enum! {
    /// One native step of a change.
    StepAction {
        /// A native resource was created.
        Create = "create",
        /// A native resource was changed.
        Update = "update",
        /// A native resource was deleted.
        Delete = "delete",
        /// Recovery recorded an unrecorded resource matching a plan.
        Adopt = "adopt",
        /// Recovery recorded a replacement and deleted its original.
        AdoptReplacement = "adopt-replacement",
        /// A created resource was deleted again after a failure.
        UndoCreate = "undo-create",
        /// A changed resource was changed back after a failure.
        UndoUpdate = "undo-update",
        /// A request whose outcome was unknown (no answer, or a 5xx that
        /// may follow an apply); what verification found follows it.
        Unknown = "unknown",
        /// Verification found that an unknown request was not applied.
        Absent = "absent",
        /// A resource that landed after its change gave up on it, removed.
        RemoveLate = "remove-late",
    }
}

wire_enum! {
    /// What a reconciliation found about one native resource.
    FindingKind {
        /// Recorded (or planned) but absent at the provider.
        Missing = "missing",
        /// Present with another URL, events or on/off state than planned.
        Drifted = "drifted",
        /// At the subscription's callback URL but recorded by no subscription.
        Unknown = "unknown",
    }
}

/// One completed native step, appended to its journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Step {
    /// What was done.
    pub action: StepAction,
    /// Plan key of the native resource.
    pub key: String,
    /// The provider's id of the resource.
    pub native_id: String,
    /// When (RFC 3339).
    #[serde(with = "rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: DateTime<Utc>,
}

impl Step {
    /// A step done now.
    pub fn now(action: StepAction, key: &str, native_id: &str) -> Self {
        Self {
            action,
            key: key.to_owned(),
            native_id: native_id.to_owned(),
            at: Utc::now(),
        }
    }
}

/// One difference a reconciliation found, and whether it was repaired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Finding {
    /// What differed.
    pub kind: FindingKind,
    /// Plan key; null for an `unknown` resource, which has none.
    pub key: Option<String>,
    /// The provider's id of the resource concerned.
    pub native_id: String,
    /// What was seen, and why a repair failed.
    pub detail: String,
    /// Whether it was repaired (for `unknown`: removed).
    pub repaired: bool,
}

impl Finding {
    /// Whether this finding leaves the subscription `degraded`: a missing
    /// or drifted resource that could not be repaired. An unknown resource
    /// is someone else's business until the caller asks to remove it.
    pub fn degrades(&self) -> bool {
        !self.repaired && self.kind != FindingKind::Unknown
    }
}

/// Step times keep the `+00:00` offset form the journal has always
/// written (`DateTime::to_rfc3339`), rather than chrono's default `Z`.
mod rfc3339 {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + Serialize + for<'de> Deserialize<'de>,
    {
        for &v in all {
            let wire = as_str(v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(wire));
            assert_eq!(
                serde_json::from_value::<T>(serde_json::json!(wire)).unwrap(),
                v
            );
            assert_eq!(parse(wire), Some(v));
        }
        assert_eq!(parse("no-such-name"), None);
    }

    #[test]
    fn wire_names_agree_with_serde() {
        round_trips(
            OperationKind::ALL,
            OperationKind::as_str,
            OperationKind::parse,
        );
        round_trips(
            OperationState::ALL,
            OperationState::as_str,
            OperationState::parse,
        );
        round_trips(StepAction::ALL, StepAction::as_str, StepAction::parse);
        round_trips(FindingKind::ALL, FindingKind::as_str, FindingKind::parse);
    }

    #[test]
    fn wire_names_are_the_journal_strings() {
        let names = |all: &[StepAction]| all.iter().map(|a| a.as_str()).collect::<Vec<_>>();
        assert_eq!(
            names(StepAction::ALL),
            [
                "create",
                "update",
                "delete",
                "adopt",
                "adopt-replacement",
                "undo-create",
                "undo-update",
                "unknown",
                "absent",
                "remove-late"
            ]
        );
        assert_eq!(OperationKind::RotateSecret.as_str(), "rotate_secret");
    }

    #[test]
    fn a_stored_step_reads_back_as_written() {
        let stored = r#"{"action":"undo-create","key":"k","native_id":"n1","at":"2026-01-02T03:04:05.123456+00:00"}"#;
        let step: Step = serde_json::from_str(stored).unwrap();
        assert_eq!(step.action, StepAction::UndoCreate);
        assert_eq!(
            serde_json::to_value(&step).unwrap(),
            serde_json::from_str::<serde_json::Value>(stored).unwrap()
        );
    }

    #[test]
    fn a_finding_keeps_a_null_key() {
        let f = Finding {
            kind: FindingKind::Unknown,
            key: None,
            native_id: "n".into(),
            detail: "d".into(),
            repaired: false,
        };
        let v = serde_json::to_value(&f).unwrap();
        assert!(v["key"].is_null() && v.as_object().unwrap().contains_key("key"));
        assert!(!f.degrades());
        assert!(
            Finding {
                kind: FindingKind::Missing,
                ..f
            }
            .degrades()
        );
    }
}
