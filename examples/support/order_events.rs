//! The benchmark data set, shared by the bench examples: deterministic, realistic order-event records (key, JSON value, trace-id header).
//!
//! Included with `#[path = "support/order_events.rs"] mod order_events;` (not an example itself).

/// Deterministic, realistic order events: JSON text with ids, names, amounts and a free-text
/// note padding the value to the requested size. Compresses like real event streams do (a
/// fixed schema, repeated vocabulary), unlike random bytes.
pub struct OrderEvents {
    value_bytes: usize,
}

const FIRST: &[&str] = &[
    "Ada", "Brian", "Chen", "Dana", "Emeka", "Farah", "Gustav", "Hana", "Ivan", "Julia", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya",
];
const LAST: &[&str] = &[
    "Lovelace",
    "Kernighan",
    "Wei",
    "Scully",
    "Okafor",
    "Haddad",
    "Larsen",
    "Sato",
    "Petrov",
    "Moreau",
    "Mensah",
    "Fischer",
    "Rossi",
    "Lindqvist",
    "Aziz",
    "Raman",
];
const CITIES: &[&str] = &[
    "Lisbon", "Osaka", "Nairobi", "Toronto", "Berlin", "Austin", "Lyon", "Pune", "Bergen", "Quito",
];
const SKUS: &[&str] = &[
    "KB-1042", "MS-2201", "HD-7730", "CB-0099", "MN-2724", "SP-1180", "WB-5512", "DK-3307",
];
const STATUS: &[&str] = &[
    "created",
    "paid",
    "packed",
    "shipped",
    "delivered",
    "returned",
];
const WORDS: &[&str] = &[
    "please",
    "leave",
    "the",
    "parcel",
    "at",
    "side",
    "door",
    "customer",
    "requested",
    "gift",
    "wrap",
    "and",
    "invoice",
    "by",
    "email",
    "fragile",
    "handle",
    "with",
    "care",
    "call",
    "before",
    "delivery",
    "weekend",
    "only",
    "express",
    "shipping",
    "upgrade",
    "applied",
    "loyalty",
    "discount",
    "code",
];

impl OrderEvents {
    pub fn new(value_bytes: usize) -> Self {
        Self { value_bytes }
    }

    /// Writes record `index`'s key and value into the buffers (reused between records).
    pub fn next(&mut self, index: u64, key: &mut String, value: &mut String) {
        use std::fmt::Write;
        let mut rng = splitmix(index);
        let mut pick = |choices: &[&'static str]| -> &'static str {
            rng = splitmix(rng);
            choices[(rng % choices.len() as u64) as usize]
        };
        let customer = splitmix(index * 7 + 1) % 50_000;
        key.clear();
        let _ = write!(key, "customer-{customer:06}");
        value.clear();
        let amount_cents = splitmix(index * 13 + 5) % 500_000;
        let quantity = 1 + splitmix(index * 17 + 3) % 9;
        let _ = write!(
            value,
            r#"{{"event":"order_{status}","order_id":"ord-{index:012}","customer":{{"id":"customer-{customer:06}","name":"{first} {last}","city":"{city}"}},"items":[{{"sku":"{sku}","qty":{quantity},"unit_price":{unit}.{unit_cents:02}}}],"amount":{dollars}.{cents:02},"currency":"EUR","created_at":"2026-11-25T{hh:02}:{mm:02}:{ss:02}Z","note":""#,
            status = pick(STATUS),
            first = pick(FIRST),
            last = pick(LAST),
            city = pick(CITIES),
            sku = pick(SKUS),
            unit = amount_cents / 100 / quantity,
            unit_cents = (amount_cents / quantity) % 100,
            dollars = amount_cents / 100,
            cents = amount_cents % 100,
            hh = (index / 3600) % 24,
            mm = (index / 60) % 60,
            ss = index % 60,
        );
        // Pad with note words up to the target size, then close the JSON object.
        let closing = "\"}";
        while value.len() + closing.len() < self.value_bytes {
            let word = pick(WORDS);
            let room = self.value_bytes - closing.len() - value.len();
            if word.len() < room {
                value.push_str(word);
                value.push(' ');
            } else {
                value.extend(std::iter::repeat_n('.', room));
            }
        }
        value.push_str(closing);
    }
}

/// SplitMix64: a tiny, good-enough deterministic mixer.
pub fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
