//! What differs between a configuration file and the contact center running: the queues,
//! agents and IVR trees to add or change (and, when pruning, to remove) so that the running
//! contact center matches the file.
//!
//! This file owns [`Plan`]: pure, no I/O. The server computes one at start to warn when the
//! file and the database differ; `guichet apply FILE` computes one from the running server's
//! gRPC answers, prints it (a dry run) and, asked to, applies it as live changes. Without
//! pruning a plan never removes anything: what exists only in the database stays.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::core::{AgentConfig, AgentId, QueueConfig, QueueId};
use crate::engine::Seed;
use crate::ivr::IvrTree;

/// One field that differs, with both values as short JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    /// The field's name as in the file (`offer_timeout_secs`, `skills`, ...).
    pub field: String,
    /// Its value in the running contact center.
    pub from: String,
    /// Its value in the file.
    pub to: String,
}

/// One change a plan makes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Change {
    /// A queue of the file that does not run yet.
    AddQueue(QueueConfig),
    /// A queue whose running configuration differs from the file's.
    ChangeQueue {
        /// The file's configuration.
        config: QueueConfig,
        /// What differs.
        fields: Vec<FieldChange>,
    },
    /// A running queue the file does not have (only when pruning).
    RemoveQueue(QueueId),
    /// An agent of the file that does not exist yet.
    AddAgent(AgentConfig),
    /// An agent whose configuration differs from the file's.
    ChangeAgent {
        /// The file's configuration.
        config: AgentConfig,
        /// What differs.
        fields: Vec<FieldChange>,
    },
    /// An agent the file does not have (only when pruning).
    RemoveAgent(AgentId),
    /// A tree of `[[voice.trees]]` that is not stored yet: stored and activated.
    AddTree(IvrTree),
    /// A tree whose active version differs from the file: the file's tree is stored as a new
    /// version and activated.
    ChangeTree {
        /// The file's tree.
        tree: IvrTree,
        /// The version active now (0: none is).
        active: u32,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fields = |list: &[FieldChange]| {
            list.iter()
                .map(|c| format!("{}: {} -> {}", c.field, c.from, c.to))
                .collect::<Vec<_>>()
                .join("; ")
        };
        match self {
            Change::AddQueue(q) => write!(f, "+ queue {} (new)", q.id),
            Change::ChangeQueue { config, fields: c } => {
                write!(f, "~ queue {}: {}", config.id, fields(c))
            }
            Change::RemoveQueue(q) => write!(f, "- queue {q} (not in the file)"),
            Change::AddAgent(a) => write!(f, "+ agent {} (new)", a.id),
            Change::ChangeAgent { config, fields: c } => {
                write!(f, "~ agent {}: {}", config.id, fields(c))
            }
            Change::RemoveAgent(a) => write!(f, "- agent {a} (not in the file)"),
            Change::AddTree(t) => write!(f, "+ IVR tree {} (new, activated)", t.name),
            Change::ChangeTree { tree, active: 0 } => write!(
                f,
                "~ IVR tree {}: no version is active; the file's tree becomes a new active version",
                tree.name
            ),
            Change::ChangeTree { tree, active } => write!(
                f,
                "~ IVR tree {}: the file differs from active version {active}; it becomes a new \
                 active version",
                tree.name
            ),
        }
    }
}

/// The changes that make a running contact center match a file, in the order they apply:
/// queues, agents, trees, then removals.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// The changes.
    pub changes: Vec<Change>,
}

impl Plan {
    /// Compares `file` with the running `queues`, `agents` and active `trees` (by name).
    /// Trees are compared only when `trees` is given, as the file's trees (those whose files
    /// cannot be read left out: `check-config` reports them) and the active ones. With
    /// `prune`, what runs but is not in the file is removed (queues and agents; trees are never
    /// removed).
    pub fn new(
        file: &Seed,
        queues: &[QueueConfig],
        agents: &[AgentConfig],
        trees: Option<(Vec<IvrTree>, &BTreeMap<String, IvrTree>)>,
        prune: bool,
    ) -> Plan {
        let mut changes = Vec::new();
        for q in &file.queues {
            match queues.iter().find(|r| r.id == q.id) {
                None => changes.push(Change::AddQueue(q.clone())),
                Some(running) => {
                    // A name left empty (by an older version) reads as the id, as it shows.
                    let mut running = running.clone();
                    if running.name.trim().is_empty() {
                        running.name = running.id.to_string();
                    }
                    let fields = diff(&running, q);
                    if !fields.is_empty() {
                        changes.push(Change::ChangeQueue {
                            config: q.clone(),
                            fields,
                        });
                    }
                }
            }
        }
        for a in &file.agents {
            match agents.iter().find(|r| r.id == a.id) {
                None => changes.push(Change::AddAgent(a.clone())),
                Some(running) => {
                    let mut running = running.clone();
                    if running.name.trim().is_empty() {
                        running.name = running.id.to_string();
                    }
                    let fields = diff(&running, a);
                    if !fields.is_empty() {
                        changes.push(Change::ChangeAgent {
                            config: a.clone(),
                            fields,
                        });
                    }
                }
            }
        }
        if let Some((file_trees, trees)) = trees {
            for mut tree in file_trees {
                match trees.get(&tree.name) {
                    None => changes.push(Change::AddTree(tree)),
                    Some(active) => {
                        tree.version = active.version;
                        if &tree != active {
                            tree.version = 0;
                            changes.push(Change::ChangeTree {
                                tree,
                                active: active.version,
                            });
                        }
                    }
                }
            }
        }
        if prune {
            for a in agents {
                if !file.agents.iter().any(|f| f.id == a.id) {
                    changes.push(Change::RemoveAgent(a.id.clone()));
                }
            }
            for q in queues {
                if !file.queues.iter().any(|f| f.id == q.id) {
                    changes.push(Change::RemoveQueue(q.id.clone()));
                }
            }
        }
        Plan { changes }
    }

    /// Whether the file and the running contact center agree.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// One line per change, at most `max` (then how many more).
    pub fn summary(&self, max: usize) -> String {
        let mut lines: Vec<String> = self
            .changes
            .iter()
            .take(max)
            .map(|c| c.to_string())
            .collect();
        if self.changes.len() > max {
            lines.push(format!("... and {} more", self.changes.len() - max));
        }
        lines.join("\n")
    }
}

/// The top-level fields that differ between two configurations, compared as JSON.
fn diff<T: Serialize>(running: &T, file: &T) -> Vec<FieldChange> {
    let (Ok(serde_json::Value::Object(from)), Ok(serde_json::Value::Object(to))) =
        (serde_json::to_value(running), serde_json::to_value(file))
    else {
        return Vec::new();
    };
    let mut keys: Vec<&String> = from.keys().chain(to.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|key| {
            let null = serde_json::Value::Null;
            let a = from.get(key).unwrap_or(&null);
            let b = to.get(key).unwrap_or(&null);
            (a != b).then(|| FieldChange {
                field: key.clone(),
                from: short(a),
                to: short(b),
            })
        })
        .collect()
}

/// A value as compact JSON, cut to 120 characters.
fn short(value: &serde_json::Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= 120 {
        text
    } else {
        let mut out: String = text.chars().take(120).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_lists_added_and_changed_entries_and_removes_only_when_pruning() {
        let mut file = Seed::default();
        let mut tax = QueueConfig::new("tax");
        tax.offer_timeout_secs = 30;
        file.queues.push(tax);
        file.agents.push(AgentConfig::new("zoe"));
        let running_queues = vec![QueueConfig::new("tax"), QueueConfig::new("old")];
        let running_agents = vec![AgentConfig::new("max")];
        let plan = Plan::new(&file, &running_queues, &running_agents, None, false);
        let text = plan.summary(10);
        assert_eq!(
            text,
            "~ queue tax: offer_timeout_secs: 20 -> 30\n+ agent zoe (new)"
        );
        let pruned = Plan::new(&file, &running_queues, &running_agents, None, true);
        assert!(pruned.summary(10).contains("- agent max"));
        assert!(pruned.summary(10).contains("- queue old"));
        assert!(Plan::new(&file, &file.queues, &file.agents, None, true).is_empty());
    }
}
