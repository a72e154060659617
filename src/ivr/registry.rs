//! In-memory registry of versioned IVR trees and of the dialled numbers bound to them.
//!
//! This file owns [`IvrRegistry`]: it is pure (no I/O, no clock) and meant to be held by the
//! voice channel and persisted by the store. Rules:
//! - [`IvrRegistry::put_draft`] validates a tree and stores it as the next version of its name
//!   (1, 2, 3, ...). A stored version never changes; it is shared as `Arc<IvrTree>`, so a call
//!   keeps the version it started with whatever is activated later;
//! - one version per tree is active; [`IvrRegistry::activate`] remembers the one it replaces,
//!   and [`IvrRegistry::rollback`] goes back to it (repeatedly, up to [`MAX_ROLLBACK_DEPTH`]
//!   activations back);
//! - dialled numbers are bound to tree names, normalised by
//!   [`normalize_number`] (spaces and separators dropped,
//!   leading `+` kept), and resolve to the tree's active version.
//!
//! Persistence: the registry serialises as is; deserialising checks its invariants (names
//! and versions match their keys, active and previous versions exist, numbers point to known
//! trees) but does not re-validate stored trees, which were valid when stored. A store that
//! keeps `(tree, active)` rows can rebuild it with [`IvrRegistry::restore`] and
//! [`IvrRegistry::activate`] instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::model::{normalize_number, IvrTree};
use super::validate::ValidationErrors;

/// How many previously active versions a tree remembers for [`IvrRegistry::rollback`].
pub const MAX_ROLLBACK_DEPTH: usize = 64;

/// What went wrong in a registry operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// No tree has this name.
    #[error("no IVR tree is named `{name}`")]
    UnknownTree {
        /// The name asked for.
        name: String,
    },
    /// The tree has no such version.
    #[error("IVR tree `{name}` has no version {version}")]
    UnknownVersion {
        /// The tree.
        name: String,
        /// The version asked for.
        version: u32,
    },
    /// The tree has no active version.
    #[error("IVR tree `{name}` has no active version: activate one first")]
    NoActiveVersion {
        /// The tree.
        name: String,
    },
    /// Nothing was active before the current version.
    #[error("IVR tree `{name}` has no previously active version to roll back to")]
    NothingToRollBack {
        /// The tree.
        name: String,
    },
    /// No tree is bound to this number.
    #[error("no IVR tree is bound to number `{number}`")]
    UnknownNumber {
        /// The number, normalised.
        number: String,
    },
    /// The number is empty once normalised.
    #[error("`{number}` is not a usable number")]
    InvalidNumber {
        /// The number as given.
        number: String,
    },
    /// A restored tree has a version that is already stored (or version 0).
    #[error("IVR tree `{name}` version {version} cannot be restored: versions start at 1 and a stored version is immutable")]
    VersionConflict {
        /// The tree.
        name: String,
        /// The version.
        version: u32,
    },
    /// A serialised registry does not hold together.
    #[error("inconsistent IVR registry record: {reason}")]
    Inconsistent {
        /// What does not match.
        reason: String,
    },
}

/// Every stored version of one tree, and which one is active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TreeVersions {
    versions: BTreeMap<u32, Arc<IvrTree>>,
    active: Option<u32>,
    /// Versions active before the current one, most recent last.
    #[serde(default)]
    previous: Vec<u32>,
}

/// Versioned IVR trees by name, and the numbers bound to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RegistryRecord")]
pub struct IvrRegistry {
    trees: BTreeMap<String, TreeVersions>,
    /// Normalised number -> tree name.
    numbers: BTreeMap<String, String>,
}

/// The serialised form of an [`IvrRegistry`], checked before it becomes one.
#[derive(Deserialize)]
struct RegistryRecord {
    #[serde(default)]
    trees: BTreeMap<String, TreeVersions>,
    #[serde(default)]
    numbers: BTreeMap<String, String>,
}

impl TryFrom<RegistryRecord> for IvrRegistry {
    type Error = RegistryError;

    fn try_from(record: RegistryRecord) -> Result<Self, Self::Error> {
        let inconsistent = |reason: String| RegistryError::Inconsistent { reason };
        for (name, entry) in &record.trees {
            for (version, tree) in &entry.versions {
                if tree.name != *name || tree.version != *version || *version == 0 {
                    return Err(inconsistent(format!(
                        "entry `{name}` version {version} holds tree `{}` version {}",
                        tree.name, tree.version
                    )));
                }
            }
            for version in entry.active.iter().chain(&entry.previous) {
                if !entry.versions.contains_key(version) {
                    return Err(inconsistent(format!(
                        "tree `{name}` refers to missing version {version}"
                    )));
                }
            }
        }
        let mut numbers = BTreeMap::new();
        for (number, name) in record.numbers {
            if !record.trees.contains_key(&name) {
                return Err(inconsistent(format!(
                    "number `{number}` is bound to unknown tree `{name}`"
                )));
            }
            numbers.insert(normalize_number(&number), name);
        }
        Ok(IvrRegistry {
            trees: record.trees,
            numbers,
        })
    }
}

impl IvrRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Validates `tree` and stores it as the next version of its name, which it returns. The
    /// version field of `tree` is ignored and overwritten. The new version is not activated.
    pub fn put_draft(&mut self, mut tree: IvrTree) -> Result<u32, ValidationErrors> {
        tree.validate()?;
        let entry = self.trees.entry(tree.name.clone()).or_default();
        let version = entry
            .versions
            .last_key_value()
            .map_or(1, |(last, _)| last.saturating_add(1));
        tree.version = version;
        entry.versions.insert(version, Arc::new(tree));
        Ok(version)
    }

    /// Stores an already-versioned tree as it is, without validating it: for rebuilding the
    /// registry from persisted versions. Fails if that version exists or is 0.
    pub fn restore(&mut self, tree: IvrTree) -> Result<(), RegistryError> {
        let taken = self
            .trees
            .get(&tree.name)
            .is_some_and(|e| e.versions.contains_key(&tree.version));
        if tree.version == 0 || taken {
            return Err(RegistryError::VersionConflict {
                name: tree.name,
                version: tree.version,
            });
        }
        self.trees
            .entry(tree.name.clone())
            .or_default()
            .versions
            .insert(tree.version, Arc::new(tree));
        Ok(())
    }

    /// Makes `version` the active version of tree `name`. The version it replaces is
    /// remembered for [`IvrRegistry::rollback`]. Activating the active version does nothing.
    pub fn activate(&mut self, name: &str, version: u32) -> Result<(), RegistryError> {
        let entry = self.entry_mut(name)?;
        if !entry.versions.contains_key(&version) {
            return Err(RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
            });
        }
        if entry.active == Some(version) {
            return Ok(());
        }
        if let Some(current) = entry.active.replace(version) {
            entry.previous.push(current);
            if entry.previous.len() > MAX_ROLLBACK_DEPTH {
                entry.previous.remove(0);
            }
        }
        Ok(())
    }

    /// Sets the active version of tree `name` and the versions active before it (most recent
    /// last), as a store recorded them: for rebuilding the registry at startup. Previous
    /// versions that are not stored are dropped; at most [`MAX_ROLLBACK_DEPTH`] are kept.
    pub fn restore_active(
        &mut self,
        name: &str,
        version: u32,
        previous: &[u32],
    ) -> Result<(), RegistryError> {
        let entry = self.entry_mut(name)?;
        if !entry.versions.contains_key(&version) {
            return Err(RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
            });
        }
        let mut kept: Vec<u32> = previous
            .iter()
            .copied()
            .filter(|v| entry.versions.contains_key(v))
            .collect();
        if kept.len() > MAX_ROLLBACK_DEPTH {
            kept.drain(..kept.len() - MAX_ROLLBACK_DEPTH);
        }
        entry.active = Some(version);
        entry.previous = kept;
        Ok(())
    }

    /// The versions of tree `name` that were active before the current one, most recent last
    /// (empty for an unknown tree).
    pub fn previous(&self, name: &str) -> Vec<u32> {
        self.trees
            .get(name)
            .map(|e| e.previous.clone())
            .unwrap_or_default()
    }

    /// The version [`IvrRegistry::rollback`] would go back to, if any.
    pub fn rollback_target(&self, name: &str) -> Option<u32> {
        self.trees
            .get(name)
            .and_then(|e| e.previous.last().copied())
    }

    /// Re-activates the version that was active before the current one, and returns it.
    pub fn rollback(&mut self, name: &str) -> Result<u32, RegistryError> {
        let entry = self.entry_mut(name)?;
        let Some(version) = entry.previous.pop() else {
            return Err(RegistryError::NothingToRollBack {
                name: name.to_owned(),
            });
        };
        entry.active = Some(version);
        Ok(version)
    }

    /// The stored versions of tree `name`, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<u32>, RegistryError> {
        Ok(self.entry(name)?.versions.keys().copied().collect())
    }

    /// The active version of tree `name`, if it has one.
    pub fn active(&self, name: &str) -> Option<Arc<IvrTree>> {
        let entry = self.trees.get(name)?;
        entry
            .active
            .and_then(|v| entry.versions.get(&v))
            .map(Arc::clone)
    }

    /// The number of the active version of tree `name`, if it has one.
    pub fn active_version(&self, name: &str) -> Option<u32> {
        self.trees.get(name).and_then(|e| e.active)
    }

    /// Version `version` of tree `name`.
    pub fn get(&self, name: &str, version: u32) -> Result<Arc<IvrTree>, RegistryError> {
        self.entry(name)?
            .versions
            .get(&version)
            .map(Arc::clone)
            .ok_or_else(|| RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
            })
    }

    /// The names of the stored trees, in order.
    pub fn tree_names(&self) -> impl Iterator<Item = &str> {
        self.trees.keys().map(String::as_str)
    }

    /// Routes calls to `number` to tree `name` (replacing any previous binding). The tree must
    /// have at least one stored version.
    pub fn bind_number(&mut self, number: &str, name: &str) -> Result<(), RegistryError> {
        let normalised = normalize_number(number);
        if normalised.is_empty() {
            return Err(RegistryError::InvalidNumber {
                number: number.to_owned(),
            });
        }
        self.entry(name)?;
        self.numbers.insert(normalised, name.to_owned());
        Ok(())
    }

    /// Removes the binding of `number`, returning the tree name it was bound to.
    pub fn unbind_number(&mut self, number: &str) -> Result<String, RegistryError> {
        let normalised = normalize_number(number);
        self.numbers
            .remove(&normalised)
            .ok_or(RegistryError::UnknownNumber { number: normalised })
    }

    /// The name of the tree bound to the dialled number `to`.
    pub fn tree_name_for_number(&self, to: &str) -> Result<&str, RegistryError> {
        let normalised = normalize_number(to);
        self.numbers
            .get(&normalised)
            .map(String::as_str)
            .ok_or(RegistryError::UnknownNumber { number: normalised })
    }

    /// The active version of the tree bound to the dialled number `to`: what a new call to
    /// that number starts on.
    pub fn tree_for_number(&self, to: &str) -> Result<Arc<IvrTree>, RegistryError> {
        let name = self.tree_name_for_number(to)?;
        self.active(name)
            .ok_or_else(|| RegistryError::NoActiveVersion {
                name: name.to_owned(),
            })
    }

    /// Every binding, as (normalised number, tree name), in number order.
    pub fn numbers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.numbers.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    fn entry(&self, name: &str) -> Result<&TreeVersions, RegistryError> {
        self.trees
            .get(name)
            .filter(|e| !e.versions.is_empty())
            .ok_or_else(|| RegistryError::UnknownTree {
                name: name.to_owned(),
            })
    }

    fn entry_mut(&mut self, name: &str) -> Result<&mut TreeVersions, RegistryError> {
        self.trees
            .get_mut(name)
            .filter(|e| !e.versions.is_empty())
            .ok_or_else(|| RegistryError::UnknownTree {
                name: name.to_owned(),
            })
    }
}
