//! The IVR RPCs of the `Supervisor` service: put, validate, activate, get, list and roll back
//! versions of the phone channel's trees (see [`IvrTrees`]).

use tonic::Status;

use crate::channels::voice::{IvrTrees, TreeError};
use crate::core::Timestamp;
use crate::engine::{Clock, SystemClock};
use crate::ivr::{RegistryError, ValidationError};
use crate::store::{IvrAuthor, IvrVersionInfo};

use super::convert::{self, required};
use super::proto as pb;
use super::status;

/// Most characters in a version's comment.
pub const MAX_COMMENT_CHARS: usize = 1_000;

/// The status for a refused or failed IVR operation; internal failures are logged, not shown.
pub fn tree_status(error: TreeError) -> Status {
    match error {
        TreeError::Parse(_) | TreeError::Invalid(_) => Status::invalid_argument(error.to_string()),
        TreeError::Registry(
            ref e @ (RegistryError::UnknownTree { .. } | RegistryError::UnknownVersion { .. }),
        ) => Status::not_found(e.to_string()),
        TreeError::Registry(
            ref
            e @ (RegistryError::NothingToRollBack { .. } | RegistryError::NoActiveVersion { .. }),
        ) => Status::failed_precondition(e.to_string()),
        TreeError::Registry(e) => Status::invalid_argument(e.to_string()),
        TreeError::QueueInUse { .. } => Status::failed_precondition(error.to_string()),
        TreeError::Unavailable(_) => {
            Status::unavailable("the router cannot be read now: retry in a moment")
        }
        other => status::internal("IVR operation", &other),
    }
}

fn version_pb(info: &IvrVersionInfo) -> pb::IvrVersion {
    pb::IvrVersion {
        name: info.name.clone(),
        version: info.version,
        active: info.active,
        created_at_unix_ms: convert::ms(info.created_at),
        author: info.author.clone(),
        comment: info.comment.clone(),
        warnings: Vec::new(),
    }
}

fn problems_pb(list: &[ValidationError]) -> Vec<pb::IvrProblem> {
    list.iter()
        .map(|e| pb::IvrProblem {
            node: e.node.as_ref().map(|n| n.to_string()).unwrap_or_default(),
            reason: e.reason.to_string(),
        })
        .collect()
}

async fn one_version(trees: &IvrTrees, name: &str, version: u32) -> Result<pb::IvrVersion, Status> {
    let list = trees.versions(name).await.map_err(tree_status)?;
    list.iter()
        .find(|v| v.version == version)
        .map(version_pb)
        .ok_or_else(|| Status::not_found(format!("IVR tree `{name}` has no version {version}")))
}

/// The uploaded tree (the message size limit bounds it).
fn tree_json(value: &str) -> Result<&str, Status> {
    if value.trim().is_empty() {
        return Err(convert::invalid("tree_json is required: the tree as JSON"));
    }
    Ok(value)
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// `PutIvrVersion`, by `author` (the caller's token label or agent).
pub async fn put(
    trees: &IvrTrees,
    request: pb::PutIvrVersionRequest,
    author: String,
) -> Result<pb::IvrVersion, Status> {
    let json = tree_json(&request.tree_json)?;
    let comment = request.comment.trim();
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(convert::invalid(format!(
            "comment is longer than {MAX_COMMENT_CHARS} characters: shorten it"
        )));
    }
    let by = IvrAuthor {
        author,
        comment: comment.to_owned(),
    };
    let tree = crate::channels::voice::trees::parse(json).map_err(tree_status)?;
    let name = tree.name.clone();
    let stored = trees.put(tree, now(), &by).await.map_err(tree_status)?;
    if request.activate {
        trees
            .activate(&name, stored.version)
            .await
            .map_err(tree_status)?;
    }
    tracing::info!(
        tree = %name,
        version = stored.version,
        activated = request.activate,
        author = %by.author,
        warnings = stored.warnings.len(),
        "IVR version stored"
    );
    let mut reply = one_version(trees, &name, stored.version).await?;
    reply.warnings = problems_pb(&stored.warnings);
    Ok(reply)
}

/// `ValidateIvrTree`: the tree's rules and the queues it names, against the router's.
pub async fn validate(
    trees: &IvrTrees,
    request: &pb::ValidateIvrTreeRequest,
) -> Result<pb::ValidateIvrTreeResponse, Status> {
    let json = tree_json(&request.tree_json)?;
    let tree = crate::channels::voice::trees::parse(json).map_err(tree_status)?;
    let known = trees.known_queues().await.map_err(tree_status)?;
    let checked = tree.check(Some(&known));
    Ok(pb::ValidateIvrTreeResponse {
        valid: checked.errors.is_empty(),
        problems: problems_pb(&checked.errors),
        warnings: problems_pb(&checked.warnings),
    })
}

/// `ActivateIvrVersion`.
pub async fn activate(
    trees: &IvrTrees,
    request: &pb::ActivateIvrVersionRequest,
) -> Result<pb::IvrVersion, Status> {
    let name = required("name", &request.name)?;
    trees
        .activate(name, request.version)
        .await
        .map_err(tree_status)?;
    tracing::info!(tree = %name, version = request.version, "IVR version activated");
    one_version(trees, name, request.version).await
}

/// `GetIvrVersion`.
pub async fn get(
    trees: &IvrTrees,
    request: &pb::GetIvrVersionRequest,
) -> Result<pb::IvrVersionTree, Status> {
    let name = required("name", &request.name)?;
    let stored = trees
        .get(name, request.version)
        .await
        .map_err(tree_status)?;
    Ok(pb::IvrVersionTree {
        version: Some(version_pb(&stored.info)),
        tree_json: stored.json,
    })
}

/// `ListIvrVersions`.
pub async fn list(
    trees: &IvrTrees,
    request: &pb::ListIvrVersionsRequest,
) -> Result<pb::ListIvrVersionsResponse, Status> {
    let names: Vec<String> = if request.name.trim().is_empty() {
        trees.read(|r| r.tree_names().map(str::to_owned).collect())
    } else {
        vec![request.name.trim().to_owned()]
    };
    let mut versions = Vec::new();
    for name in names {
        let list = trees.versions(&name).await.map_err(tree_status)?;
        versions.extend(list.iter().map(version_pb));
    }
    // A page token is `name@version` of the last entry sent (the version zero-padded, so that
    // keys sort as the list does: trees by name, each tree's versions in order).
    let (versions, next_page_token) = super::limits::page_by_key(
        versions,
        |v| format!("{}@{:010}", v.name, v.version),
        request.page_size,
        &request.page_token,
    )?;
    Ok(pb::ListIvrVersionsResponse {
        versions,
        next_page_token,
    })
}

/// `RollbackIvr`.
pub async fn rollback(
    trees: &IvrTrees,
    request: &pb::RollbackIvrRequest,
) -> Result<pb::IvrVersion, Status> {
    let name = required("name", &request.name)?;
    let version = trees.rollback(name).await.map_err(tree_status)?;
    tracing::info!(tree = %name, version, "IVR rolled back");
    one_version(trees, name, version).await
}
