//! On the real server: an agent cannot log out while holding an accepted interaction; a
//! reconnected offer stream resends the pending offer; an admin erases a contact (GDPR) once its
//! interactions are over, and a supervisor may not.

use crate::api_common;

use tonic::Code;

use api_common::{assert_status, next, spec, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_reconnect_and_erasure() {
    let ws = Workspace::new();
    let server = ws.start();
    let admin = ws.admin_token();
    let (sup_token, _) = ws.token("supervisor", None);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let mut sup = server.supervisor(&sup_token);
    let mut root = server.supervisor(&admin);
    let mut int = server.interactions(&admin);
    let mut desk = server.desktop(&amelie_token);

    // No after-contact work, so that a completed interaction ends at once.
    api_common::no_wrap_up(&mut sup, "benefits").await;
    desk.login(pb::LoginRequest::default())
        .await
        .expect("login");
    let created = int
        .create(spec(
            "benefits",
            pb::Channel::Email,
            "jeanne@example.org",
            "M-1",
        ))
        .await
        .expect("create")
        .into_inner();
    let id = created.interaction.expect("interaction").id;

    // The offer is pending: a stream opened now gets it; a second stream after the first is
    // dropped gets it again.
    for _ in 0..2 {
        let mut offers = desk
            .offers(pb::OffersRequest::default())
            .await
            .expect("offers")
            .into_inner();
        match next(&mut offers).await.update {
            Some(Update::Offer(offer)) => {
                assert_eq!(offer.interaction.expect("interaction").id, id)
            }
            other => panic!("expected the pending offer, got {other:?}"),
        }
    }

    desk.accept(pb::InteractionAction {
        interaction_id: id.clone(),
        ..Default::default()
    })
    .await
    .expect("accept");
    assert_status(
        desk.logout(pb::LogoutRequest::default()).await,
        Code::FailedPrecondition,
        &["still handles", &id],
    );
    assert_status(
        root.erase_contact(pb::EraseContactRequest {
            contact: "jeanne@example.org".into(),
        })
        .await,
        Code::FailedPrecondition,
        &["open"],
    );
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "answered".into(),
        notes: "sent the form".into(),
        ..Default::default()
    })
    .await
    .expect("complete");

    // Only admins erase.
    assert_status(
        sup.erase_contact(pb::EraseContactRequest {
            contact: "jeanne@example.org".into(),
        })
        .await,
        Code::PermissionDenied,
        &["admin"],
    );
    let erased = api_common::eventually(
        std::time::Duration::from_secs(60),
        "the interaction to end and the contact to be erased",
        || {
            let mut root = root.clone();
            async move {
                root.erase_contact(pb::EraseContactRequest {
                    contact: "jeanne@example.org".into(),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
            }
        },
    )
    .await;
    assert_eq!(erased.interaction_ids, vec![id]);
    assert!(erased.journal_rows >= 1);
    assert_status(
        root.erase_contact(pb::EraseContactRequest {
            contact: String::new(),
        })
        .await,
        Code::InvalidArgument,
        &["contact"],
    );
    desk.logout(pb::LogoutRequest::default())
        .await
        .expect("logout once the work is done");
}
