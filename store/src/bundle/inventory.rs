//! [`Inventory`]: the addresses a store holds, for incremental export (`hstore store inventory > have.json`, then
//! `hstore export --exclude have.json` on the other side).
//!
//! JSON, one address per line, sorted, so it diffs and compresses well: 250,000 objects take about 17 MB (a binary
//! list would take 8 MB; not worth a second format). An object in the inventory is assumed to come with its whole
//! subtree, which holds for every store hstore writes (children are always stored before their parent); after
//! `hstore store verify --repair` removed objects, re-run verify until clean before taking an inventory.

use std::collections::HashSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::digest::Digest;
use crate::store::Store;

/// The inventory file's `format` field.
pub const INVENTORY_FORMAT: &str = "hstore-inventory";

/// The addresses one store holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Always [`INVENTORY_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// Every object address, sorted and unique.
    pub addresses: Vec<Digest>,
}

impl Inventory {
    /// The inventory of `store`.
    pub fn of_store(store: &Store) -> Result<Self, Error> {
        let mut addresses: Vec<Digest> = store
            .object_copies()?
            .into_iter()
            .map(|copy| copy.digest)
            .collect();
        addresses.dedup();
        Ok(Self {
            format: INVENTORY_FORMAT.into(),
            version: 1,
            addresses,
        })
    }

    /// The JSON text: one address per line, trailing newline.
    pub fn to_json(&self) -> String {
        let mut text = format!(
            "{{\n  \"format\": \"{INVENTORY_FORMAT}\",\n  \"version\": {},\n  \"addresses\": [",
            self.version
        );
        for (index, address) in self.addresses.iter().enumerate() {
            text.push_str(if index == 0 { "\n    \"" } else { ",\n    \"" });
            text.push_str(&address.to_string());
            text.push('"');
        }
        text.push_str(if self.addresses.is_empty() {
            "]\n}\n"
        } else {
            "\n  ]\n}\n"
        });
        text
    }

    /// Parses an inventory; `path` is for messages.
    pub fn from_slice(bytes: &[u8], path: &Path) -> Result<Self, Error> {
        serde_json::from_slice(bytes).map_err(|source| Error::InvalidInventory {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The addresses as a set.
    pub fn into_set(self) -> HashSet<Digest> {
        self.addresses.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips() {
        for count in [0u8, 1, 3] {
            let inventory = Inventory {
                format: INVENTORY_FORMAT.into(),
                version: 1,
                addresses: (0..count).map(|i| Digest::from_bytes([i; 32])).collect(),
            };
            let text = inventory.to_json();
            assert_eq!(
                Inventory::from_slice(text.as_bytes(), Path::new("x")).unwrap(),
                inventory
            );
        }
    }
}
