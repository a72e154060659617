//! The live IVR trees: the [`IvrRegistry`] the phone channel reads on every call, kept in step
//! with the store's IVR tables.
//!
//! This file owns [`IvrTrees`], the handle shared by the voice webhooks (reads) and the
//! supervisors' gRPC calls (put, validate, activate, get, list, roll back). A version is stored
//! or activated only if every queue it names exists in the router and takes calls; a queue is
//! removed only while [`IvrTrees::hold_for_queue_removal`] holds the writes, so no active tree
//! can name a missing queue. Writes are serialised
//! by an async mutex and reach SQLite before the in-memory registry changes, so that what a call
//! starts on is always durable. The registry's read-write lock is held only for in-memory work,
//! never across an `.await`. A stored version never changes: a call keeps the `Arc` of the
//! version it started on, whatever is activated later.

use std::path::Path;
use std::sync::{Arc, RwLock};

use crate::core::{Channel, QueueId, Timestamp};
use crate::engine::Engine;
use crate::ivr::{
    IvrRegistry, IvrTree, KnownQueues, NodeId, RegistryError, ValidationError, ValidationErrors,
};
use crate::store::{IvrAuthor, IvrVersionInfo, StoreError, StoreHandle};

use super::config::VoiceConfig;

/// Why an IVR operation was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The upload is not a tree (JSON syntax or shape).
    #[error("the IVR tree is not valid JSON of a tree: {0}")]
    Parse(String),
    /// The tree breaks validation rules (or names unknown queues); each error names its node
    /// and reason.
    #[error(transparent)]
    Invalid(#[from] ValidationErrors),
    /// Unknown tree or version, nothing to roll back, unknown number...
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A seed file could not be read.
    #[error("cannot read IVR tree file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// An active tree sends calls to the queue that was to be removed.
    #[error("queue {queue} receives calls from the active IVR tree(s) {trees}: activate versions that do not name it first")]
    QueueInUse {
        /// The queue.
        queue: String,
        /// Where: `tree vN (node x)`, comma-separated.
        trees: String,
    },
    /// The router could not be read (the server is stopping).
    #[error("the router cannot be read now: {0}")]
    Unavailable(String),
}

/// One version of a tree as stored: its description and its JSON.
#[derive(Debug, Clone)]
pub struct StoredVersion {
    /// Version, author, comment, date, whether active.
    pub info: IvrVersionInfo,
    /// The tree, as JSON.
    pub json: String,
}

/// The shared, live IVR trees. Cheap to clone.
#[derive(Debug, Clone)]
pub struct IvrTrees {
    registry: Arc<RwLock<IvrRegistry>>,
    store: StoreHandle,
    writes: Arc<tokio::sync::Mutex<()>>,
    /// Where the queues trees name are looked up (the router).
    engine: Engine,
}

/// Held while a queue is being removed: no tree version can be stored or activated meanwhile.
#[derive(Debug)]
pub struct QueueRemoval {
    _writing: tokio::sync::OwnedMutexGuard<()>,
}

impl IvrTrees {
    /// Rebuilds the registry from the store, seeds the `[[voice.trees]]` files whose tree has
    /// no stored version (stored as version 1 and activated, after checking the queues they
    /// name against the router's), and binds `[[voice.numbers]]`. Logs a warning for every
    /// active tree that names a queue the router does not have.
    pub async fn load(
        engine: &Engine,
        config: &VoiceConfig,
        now: Timestamp,
    ) -> Result<IvrTrees, TreeError> {
        let store = engine.store().clone();
        let rows = store
            .run(move |s| -> Result<_, StoreError> {
                let mut rows = Vec::new();
                let mut active = Vec::new();
                for name in s.ivr_names()? {
                    let versions = s.ivr_versions(&name)?;
                    for info in versions {
                        if let Some(json) = s.ivr_version(&name, info.version)? {
                            rows.push((info, json));
                        }
                    }
                    if let Some(a) = s.ivr_active(&name)? {
                        active.push((name, a));
                    }
                }
                Ok((rows, active, s.number_bindings()?))
            })
            .await?;
        let (rows, active, bindings) = rows;
        let mut registry = IvrRegistry::new();
        for (info, json) in rows {
            let mut tree = IvrTree::from_json(&json).map_err(|e| {
                TreeError::Parse(format!("stored {} v{}: {e}", info.name, info.version))
            })?;
            tree.version = info.version;
            registry.restore(tree)?;
        }
        for (name, a) in active {
            registry.restore_active(&name, a.version, &a.previous)?;
        }
        let trees = IvrTrees {
            registry: Arc::new(RwLock::new(registry)),
            store,
            writes: Arc::new(tokio::sync::Mutex::new(())),
            engine: engine.clone(),
        };
        let seeder = IvrAuthor {
            author: "configuration file".to_owned(),
            comment: "seeded from [[voice.trees]] at first start".to_owned(),
        };
        for seed in &config.trees {
            let path = match &config.base_dir {
                Some(dir) if seed.file.is_relative() => dir.join(&seed.file),
                _ => seed.file.clone(),
            };
            let json = match read(&path) {
                Ok(json) => json,
                // The configuration built into the binary has no directory to read from: its
                // demo tree is built in too.
                Err(e) if config.base_dir.is_none() => match embedded_tree(&seed.file) {
                    Some(json) => json.to_owned(),
                    None => {
                        tracing::warn!("{e}: no tree seeded from it");
                        continue;
                    }
                },
                Err(e) => return Err(e),
            };
            let mut tree = parse(&json)?;
            if trees.read(|r| r.versions(&tree.name).is_ok()) {
                let active = trees.read(|r| r.active(&tree.name));
                tree.version = active.as_ref().map_or(0, |t| t.version);
                if active.as_deref() != Some(&tree) {
                    tracing::warn!(
                        "IVR tree `{}` of {} differs from its active version {} in the database, \
                         which wins; `guichet apply FILE --yes` stores and activates the file's",
                        tree.name,
                        path.display(),
                        tree.version
                    );
                }
                continue;
            }
            let name = tree.name.clone();
            let stored = trees.put(tree, now, &seeder).await?;
            trees.activate(&name, stored.version).await?;
            tracing::info!(tree = %name, version = stored.version, "IVR tree seeded from {}", path.display());
        }
        {
            let mut r = trees.registry.write().unwrap_or_else(|e| e.into_inner());
            for (number, tree) in bindings {
                if let Err(e) = r.bind_number(&number, &tree) {
                    tracing::warn!("stored number binding {number} -> {tree} ignored: {e}");
                }
            }
            for b in &config.numbers {
                r.bind_number(&b.number, &b.tree)?;
            }
        }
        let known = trees.known_queues().await?;
        for problem in trees.active_problems(&known) {
            tracing::warn!(
                "{problem}: calls reaching it are hung up; put and activate a corrected version"
            );
        }
        Ok(trees)
    }

    /// Runs `f` on the registry (a short, in-memory read).
    pub fn read<R>(&self, f: impl FnOnce(&IvrRegistry) -> R) -> R {
        f(&self.registry.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The router's queues, with whether each takes phone calls.
    pub async fn known_queues(&self) -> Result<KnownQueues, TreeError> {
        let queues = self
            .engine
            .read(|r| {
                r.queues()
                    .iter()
                    .map(|q| {
                        (
                            q.config.id.to_string(),
                            q.config.channels.contains(&Channel::Voice),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|e| TreeError::Unavailable(e.to_string()))?;
        Ok(KnownQueues::new(queues))
    }

    /// Every problem of the active trees with the queues they name, as `tree vN: node x: ...`.
    fn active_problems(&self, known: &KnownQueues) -> Vec<String> {
        self.read(|r| {
            let mut out = Vec::new();
            for name in r.tree_names() {
                if let Some(tree) = r.active(name) {
                    for e in tree.check(Some(known)).errors {
                        if matches!(
                            e.reason,
                            crate::ivr::Problem::UnknownQueue { .. }
                                | crate::ivr::Problem::QueueWithoutVoice { .. }
                        ) {
                            out.push(format!("IVR tree `{name}` v{}: {e}", tree.version));
                        }
                    }
                }
            }
            out
        })
    }

    /// Checks `tree` (its rules and the queues it names, against the router's): the warnings
    /// when it would be accepted.
    pub async fn check(&self, tree: &IvrTree) -> Result<Vec<ValidationError>, TreeError> {
        let known = self.known_queues().await?;
        Ok(tree.validate_with(&known)?)
    }

    /// Validates `tree` (rules and queues) and stores it as the next version of its name (not
    /// activated), recording `by`; returns the version and the warnings.
    pub async fn put(
        &self,
        mut tree: IvrTree,
        now: Timestamp,
        by: &IvrAuthor,
    ) -> Result<Stored, TreeError> {
        let _writing = self.writes.lock().await;
        let warnings = self.check(&tree).await?;
        let version = self.read(|r| {
            r.versions(&tree.name)
                .ok()
                .and_then(|v| v.last().copied())
                .map_or(1, |last| last.saturating_add(1))
        });
        tree.version = version;
        let json = serde_json::to_string(&tree).map_err(|e| TreeError::Parse(e.to_string()))?;
        let name = tree.name.clone();
        let by = by.clone();
        self.store
            .run(move |s| s.put_ivr_version(&name, version, &json, now, &by))
            .await?;
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .restore(tree)?;
        Ok(Stored { version, warnings })
    }

    /// Makes `version` the active version of `name`: new calls start on it at once; calls in
    /// progress keep theirs. Refused if the version names a queue the router does not have.
    pub async fn activate(&self, name: &str, version: u32) -> Result<(), TreeError> {
        let _writing = self.writes.lock().await;
        let tree = self.read(|r| r.get(name, version))?;
        self.check(&tree).await?;
        let mut trial = self.read(IvrRegistry::clone);
        trial.activate(name, version)?;
        self.persist_active(name, version, trial.previous(name))
            .await?;
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = trial;
        Ok(())
    }

    /// Goes back to the version active before the current one; returns it. Refused if that
    /// version names a queue the router no longer has.
    pub async fn rollback(&self, name: &str) -> Result<u32, TreeError> {
        let _writing = self.writes.lock().await;
        let mut trial = self.read(IvrRegistry::clone);
        let version = trial.rollback(name)?;
        let tree = trial.get(name, version)?;
        self.check(&tree).await?;
        self.persist_active(name, version, trial.previous(name))
            .await?;
        *self.registry.write().unwrap_or_else(|e| e.into_inner()) = trial;
        Ok(version)
    }

    /// The stored versions of `name`, oldest first, with the active one flagged.
    pub async fn versions(&self, name: &str) -> Result<Vec<IvrVersionInfo>, TreeError> {
        let owned = name.to_owned();
        let list = self.store.run(move |s| s.ivr_versions(&owned)).await?;
        if list.is_empty() {
            return Err(RegistryError::UnknownTree {
                name: name.to_owned(),
            }
            .into());
        }
        Ok(list)
    }

    /// Version `version` of `name` (0: the active one) with its tree as JSON.
    pub async fn get(&self, name: &str, version: u32) -> Result<StoredVersion, TreeError> {
        let version = if version == 0 {
            self.read(|r| r.active_version(name))
                .ok_or_else(|| RegistryError::NoActiveVersion {
                    name: name.to_owned(),
                })?
        } else {
            version
        };
        let info = self
            .versions(name)
            .await?
            .into_iter()
            .find(|v| v.version == version)
            .ok_or_else(|| RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
            })?;
        let owned = name.to_owned();
        let json = self
            .store
            .run(move |s| s.ivr_version(&owned, version))
            .await?
            .ok_or_else(|| RegistryError::UnknownVersion {
                name: name.to_owned(),
                version,
            })?;
        Ok(StoredVersion { info, json })
    }

    /// Waits for the IVR writes to finish and checks that no active tree sends calls to
    /// `queue`: while the returned guard is held, no version is stored, activated or rolled
    /// back, so the queue can be removed safely.
    pub async fn hold_for_queue_removal(&self, queue: &QueueId) -> Result<QueueRemoval, TreeError> {
        let guard = Arc::clone(&self.writes).lock_owned().await;
        let users: Vec<String> = self.read(|r| {
            let mut users = Vec::new();
            for name in r.tree_names() {
                if let Some(tree) = r.active(name) {
                    let nodes: Vec<&NodeId> = tree
                        .queue_names()
                        .filter(|(_, q)| *q == queue.as_str())
                        .map(|(id, _)| id)
                        .collect();
                    if !nodes.is_empty() {
                        let nodes: Vec<String> = nodes.iter().map(|n| format!("`{n}`")).collect();
                        users.push(format!(
                            "`{name}` v{} (node {})",
                            tree.version,
                            nodes.join(", ")
                        ));
                    }
                }
            }
            users
        });
        if users.is_empty() {
            Ok(QueueRemoval { _writing: guard })
        } else {
            Err(TreeError::QueueInUse {
                queue: queue.to_string(),
                trees: users.join(", "),
            })
        }
    }

    async fn persist_active(
        &self,
        name: &str,
        version: u32,
        previous: Vec<u32>,
    ) -> Result<(), TreeError> {
        let name = name.to_owned();
        self.store
            .run(move |s| s.set_active_ivr(&name, version, &previous))
            .await?;
        Ok(())
    }
}

/// A version just stored: its number and the warnings about it.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The new version.
    pub version: u32,
    /// Problems that did not refuse it (unreachable nodes).
    pub warnings: Vec<ValidationError>,
}

/// Parses a tree upload (JSON).
pub fn parse(json: &str) -> Result<IvrTree, TreeError> {
    IvrTree::from_json(json).map_err(|e| TreeError::Parse(e.to_string()))
}

fn read(path: &Path) -> Result<String, TreeError> {
    std::fs::read_to_string(path).map_err(|e| TreeError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// The demo configuration's tree, built into the binary with the demo configuration itself, so
/// that `guichet serve` run away from the source tree still answers the demo number.
pub(crate) fn embedded_tree(file: &std::path::Path) -> Option<&'static str> {
    (file == std::path::Path::new("ivr/demo_tree.json"))
        .then_some(include_str!("../../../config/ivr/demo_tree.json"))
}
