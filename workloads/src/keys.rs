//! Key names, and which model checks which key: registers are `r0, r1, ...` (cas-register
//! model), lists are `l0, l1, ...` (list-append model, and the lost-writes checker). The
//! checker finds each key's model from its operations; the names tell it before any.

use faultline_history::ModelKind;

/// The prefix of register keys.
pub const REGISTER_PREFIX: &str = "r";
/// The prefix of list keys.
pub const LIST_PREFIX: &str = "l";

/// The name of register key number `n`.
pub(crate) fn register_key(n: u64) -> String {
    format!("{REGISTER_PREFIX}{n}")
}

/// The name of list key number `n`.
pub(crate) fn list_key(n: u64) -> String {
    format!("{LIST_PREFIX}{n}")
}

/// The model that checks `key`: `cas-register` for `r<N>`, `list-append` for `l<N>`, `None`
/// for a key no workload here makes.
pub fn model_for_key(key: &str) -> Option<ModelKind> {
    let numbered = |prefix: &str| {
        key.strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if numbered(REGISTER_PREFIX) {
        Some(ModelKind::CasRegister)
    } else if numbered(LIST_PREFIX) {
        Some(ModelKind::ListAppend)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_model() {
        assert_eq!(
            model_for_key(&register_key(7)),
            Some(ModelKind::CasRegister)
        );
        assert_eq!(model_for_key(&list_key(0)), Some(ModelKind::ListAppend));
        for other in ["r", "l", "rx", "k7", "l1a", "", "R1"] {
            assert_eq!(model_for_key(other), None, "{other:?}");
        }
    }
}
