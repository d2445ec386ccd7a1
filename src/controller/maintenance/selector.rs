//! Kubernetes label-selector matching (`matchLabels` and `matchExpressions`), pure.

use std::collections::BTreeMap;

use crate::api::common::LabelSelector;

/// Whether `labels` satisfy `selector` as the API server evaluates it: every `matchLabels`
/// pair equal, and every expression true (`In`: the key has one of the values; `NotIn`: the
/// key is absent or has none of them; `Exists`; `DoesNotExist`). `None` and an empty selector
/// select everything. An unknown operator selects nothing (validation refuses it anyway).
pub fn matches(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    pairs
        && selector.match_expressions.iter().flatten().all(|e| {
            let values = e.values.as_deref().unwrap_or_default();
            let value = labels.get(&e.key);
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expression(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn no_selector_and_empty_selector_select_everything() {
        assert!(matches(None, &labels(&[])));
        assert!(matches(
            Some(&LabelSelector::default()),
            &labels(&[("a", "b")])
        ));
    }

    #[test]
    fn match_labels_needs_every_pair() {
        let selector = LabelSelector {
            match_labels: Some(labels(&[("app", "api"), ("tier", "db")])),
            ..LabelSelector::default()
        };
        assert!(matches(
            Some(&selector),
            &labels(&[("app", "api"), ("tier", "db"), ("x", "y")])
        ));
        assert!(!matches(Some(&selector), &labels(&[("app", "api")])));
        assert!(!matches(
            Some(&selector),
            &labels(&[("app", "web"), ("tier", "db")])
        ));
    }

    #[test]
    fn expressions_follow_kubernetes_semantics() {
        let with = |e: LabelSelectorRequirement| LabelSelector {
            match_expressions: Some(vec![e]),
            ..LabelSelector::default()
        };
        let api = labels(&[("app", "api")]);
        let none = labels(&[]);
        let in_ = with(expression("app", "In", &["api", "web"]));
        assert!(matches(Some(&in_), &api));
        assert!(!matches(Some(&in_), &none));
        let not_in = with(expression("app", "NotIn", &["api"]));
        assert!(!matches(Some(&not_in), &api));
        assert!(matches(Some(&not_in), &none), "NotIn matches an absent key");
        let exists = with(expression("app", "Exists", &[]));
        assert!(matches(Some(&exists), &api));
        assert!(!matches(Some(&exists), &none));
        let absent = with(expression("app", "DoesNotExist", &[]));
        assert!(!matches(Some(&absent), &api));
        assert!(matches(Some(&absent), &none));
        let unknown = with(expression("app", "Like", &["api"]));
        assert!(!matches(Some(&unknown), &api));
    }
}
