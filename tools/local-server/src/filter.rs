//! Lambda's event filtering for stream sources, as far as our filters use it: the pattern
//! language of EventBridge (`FilterCriteria`), so the local server hands each event-driven
//! function exactly the records Lambda would, and a test can check the template's filters
//! against sample records.
//!
//! A pattern is a JSON object mirroring the record: each key must be present and match; a leaf
//! is a list of alternatives, each a value to equal or an operator (`{"prefix": s}`,
//! `{"anything-but": [..]}`, `{"exists": bool}`). Anything else in a pattern matches nothing,
//! so an unsupported filter is noticed rather than let everything through.

use serde_json::Value;

/// Whether `record` (a stream record in Lambda's JSON form) matches `pattern`.
pub fn matches(pattern: &Value, record: &Value) -> bool {
    match pattern {
        Value::Object(fields) => {
            fields
                .iter()
                .all(|(name, expected)| match (expected, record.get(name)) {
                    (Value::Array(alternatives), found) => leaf(alternatives, found),
                    (Value::Object(_), Some(found)) => matches(expected, found),
                    _ => false,
                })
        }
        _ => false,
    }
}

/// A leaf: does `found` (absent, a value, or a list of values) satisfy one alternative?
fn leaf(alternatives: &[Value], found: Option<&Value>) -> bool {
    alternatives
        .iter()
        .any(|alternative| match (alternative, found) {
            (Value::Object(operator), found) => operation(operator, found),
            (_, Some(Value::Array(values))) => values.contains(alternative),
            (_, Some(value)) => value == alternative,
            (_, None) => false,
        })
}

fn operation(operator: &serde_json::Map<String, Value>, found: Option<&Value>) -> bool {
    let Some((name, argument)) = operator.iter().next().filter(|_| operator.len() == 1) else {
        return false;
    };
    match (name.as_str(), argument, found) {
        ("exists", Value::Bool(wanted), found) => found.is_some() == *wanted,
        ("prefix", Value::String(prefix), Some(Value::String(value))) => value.starts_with(prefix),
        ("anything-but", Value::Array(excluded), Some(value)) => !excluded.contains(value),
        ("anything-but", excluded, Some(value)) => excluded != value,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_prefixes_and_nesting_match_as_in_lambda() {
        let pattern = json!({
            "eventName": ["REMOVE"],
            "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "LOTEXP#"}]}}}
        });
        let record = |name: &str, sk: &str| json!({"eventName": name, "dynamodb": {"Keys": {"sk": {"S": sk}}}});
        assert!(matches(&pattern, &record("REMOVE", "LOTEXP#pur_1")));
        assert!(!matches(&pattern, &record("INSERT", "LOTEXP#pur_1")));
        assert!(!matches(&pattern, &record("REMOVE", "WALLET")));
        assert!(!matches(&pattern, &json!({"eventName": "REMOVE"})));
    }

    #[test]
    fn exists_and_anything_but_and_unknown_operators() {
        let record = json!({"a": "x", "list": ["y", "z"]});
        assert!(matches(&json!({"a": [{"exists": true}]}), &record));
        assert!(matches(&json!({"b": [{"exists": false}]}), &record));
        assert!(matches(&json!({"a": [{"anything-but": ["q"]}]}), &record));
        assert!(!matches(&json!({"a": [{"anything-but": ["x"]}]}), &record));
        assert!(matches(&json!({"list": ["z"]}), &record));
        assert!(!matches(&json!({"a": [{"wildcard": "*"}]}), &record));
        assert!(!matches(&json!("not an object"), &record));
    }
}
