//! Item sizes and write units by AWS's billing rules, to size hot items and price each write.
//!
//! DynamoDB Local's `ConsumedCapacity` is not what AWS bills for transactions, so figures come
//! from the items themselves: one write unit per started KB of the item (the larger of before and
//! after for an update or delete), doubled inside `TransactWriteItems`.

use serde_dynamo::{AttributeValue, Item};

/// Bytes one write unit covers.
pub const WRITE_UNIT_BYTES: usize = 1024;

/// The size AWS counts for a number: one byte per two significant digits, plus one.
fn number_size(text: &str) -> usize {
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0');
    significant.len().div_ceil(2) + 1
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(text) => number_size(text),
        AttributeValue::B(bytes) => bytes.len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        // A map or list costs 3 bytes, plus 1 byte per element.
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, value)| name.len() + value_size(value) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(list) => 3 + list.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(set) => set.iter().map(Vec::len).sum(),
    }
}

/// An item's size as DynamoDB counts it: attribute names plus values.
pub fn item_size_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

/// A record's size in its stored form.
pub fn record_size_bytes(record: &crate::table::Record) -> Result<usize, crate::StoreError> {
    Ok(item_size_bytes(&crate::dynamo::to_item(record)?))
}

/// Write units for writing an item of this size (at least one), doubled in a transaction.
pub fn write_units(item_size_bytes: usize, transactional: bool) -> u64 {
    let units = item_size_bytes.max(1).div_ceil(WRITE_UNIT_BYTES) as u64;
    if transactional { units * 2 } else { units }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sizes_follow_the_aws_rules() {
        let item = Item::from(HashMap::from([
            ("pk".to_owned(), AttributeValue::S("USER#a".into())),
            ("n".to_owned(), AttributeValue::N("12300".into())),
            ("ok".to_owned(), AttributeValue::Bool(true)),
        ]));
        // pk: 2 + 6; n: 1 + (3 digits -> 2 bytes + 1); ok: 2 + 1.
        assert_eq!(item_size_bytes(&item), 8 + 4 + 3);
    }

    #[test]
    fn each_started_kilobyte_is_a_unit_and_transactions_double_it() {
        assert_eq!(write_units(1, false), 1);
        assert_eq!(write_units(1024, false), 1);
        assert_eq!(write_units(1025, false), 2);
        assert_eq!(write_units(300, true), 2);
    }
}
