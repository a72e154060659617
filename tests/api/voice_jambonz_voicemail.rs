//! Voicemail over jambonz on the real server: the test plays jambonz's part on the `listen`
//! verb's audio WebSocket (subprotocol `audio.jambonz.org`, HTTP Basic `wsAuth` on the upgrade,
//! one JSON metadata text frame, then binary frames of 16-bit PCM), and the agent downloads the
//! WAV through the attachment link of the offer and finds the same samples; a recording longer
//! than the node's `max_length_secs` is cut at `maxLength` × sample rate × 2 bytes; a final
//! transcription posted to the `transcriptionHook` becomes the message's text; the listen's
//! `actionHook` arriving while the audio still streams waits for its end; erasing the
//! caller erases the recording; bad
//! credentials, a missing subprotocol, a call not recording and bad metadata are refused.

use crate::api_common;
use crate::voice_common;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use api_common::{next, Server, Workspace};
use guichet::api::proto as pb;
use pb::offer_update::Update;
use voice_common::*;

struct Setup {
    _ws: Workspace,
    server: Server,
    _standin: StandIn,
    base: String,
    client: reqwest::Client,
    amelie_token: String,
    admin_token: String,
}

/// The test tree with key 3 of the main menu leaving a voicemail of at most `max_secs`.
async fn setup(max_secs: u32) -> Setup {
    setup_with(max_secs, false).await
}

/// [`setup`], with jambonz transcribing voicemails (Google as speech-to-text vendor) when
/// `transcribe`.
async fn setup_with(max_secs: u32, transcribe: bool) -> Setup {
    let ws = Workspace::new();
    let standin = StandIn::start().await;
    let config = write_config(&ws.log().with_file_name("conf"), &standin.url);
    // No after-call work: an interaction ends as soon as the agent completes it.
    let text = std::fs::read_to_string(&config).expect("config");
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("wrap_up_secs = ") {
                "wrap_up_secs = 0"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&config, text).expect("config");
    if transcribe {
        let text = std::fs::read_to_string(&config).expect("config");
        let text = text.replacen(
            "[voice.sip]",
            "transcribe_voicemail = true\n\n[voice.jambonz.speech]\nstt_vendor = \"google\"\n\n[voice.sip]",
            1,
        );
        std::fs::write(&config, text).expect("config");
    }
    let tree = tree_json("v1")
        .replace(
            r#""options": {"1": "housing", "2": "bye"}"#,
            r#""options": {"1": "housing", "2": "bye", "3": "vm"}"#,
        )
        .replace(
            r#""q": {"type": "queue", "queue": "benefits"},"#,
            &format!(
                r#""q": {{"type": "queue", "queue": "benefits"}},
    "vm": {{"type": "voicemail", "prompt": {{"text": {{"fr-FR": "Laissez votre message."}}}}, "queue": "benefits", "max_length_secs": {max_secs}}},"#
            ),
        );
    std::fs::write(config.with_file_name("tree.json"), tree).expect("tree");
    let server = ws.start_with_config(&config);
    let (amelie_token, _) = ws.token("agent", Some("amelie"));
    let (admin_token, _) = ws.token("admin", None);
    let base = format!("http://{}", server.http_addr);
    Setup {
        _ws: ws,
        server,
        _standin: standin,
        base,
        client: reqwest::Client::new(),
        amelie_token,
        admin_token,
    }
}

impl Setup {
    async fn post(&self, url: &str, body: Value) -> (u16, Value) {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        json_post(
            &self.client,
            &url,
            "jambonz-signature",
            JAMBONZ_SECRET,
            &body,
        )
        .await
    }

    /// A call walked to the voicemail: its `listen` verb.
    async fn to_voicemail(&self, sid: &str) -> Value {
        let (status, verbs) = self
            .post(
                "/voice/jambonz/incoming",
                json!({"call_sid": sid, "from": "+33655555555", "to": NUMBER,
                       "direction": "inbound"}),
            )
            .await;
        assert_eq!(status, 200, "{verbs}");
        let hook = verbs[0]["actionHook"].as_str().expect("gather").to_owned();
        let (status, verbs) = self
            .post(
                &hook,
                json!({"call_sid": sid, "digits": "3", "reason": "dtmfDetected"}),
            )
            .await;
        assert_eq!(status, 200, "{verbs}");
        let listen = verbs
            .as_array()
            .expect("verbs")
            .iter()
            .find(|v| v["verb"] == "listen")
            .unwrap_or_else(|| panic!("no listen verb: {verbs}"))
            .clone();
        assert_eq!(verbs.as_array().unwrap().last().unwrap()["verb"], "hangup");
        listen
    }
}

/// The upgrade request jambonz makes for `listen`: Basic auth from `wsAuth`, the subprotocol.
fn upgrade_request(
    listen: &Value,
    password: Option<&str>,
    subprotocol: bool,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = listen["url"]
        .as_str()
        .expect("url")
        .into_client_request()
        .expect("request");
    if let Some(password) = password {
        let user = listen["wsAuth"]["username"].as_str().expect("username");
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request.headers_mut().insert(
            "authorization",
            format!("Basic {basic}").parse().expect("header"),
        );
    }
    if subprotocol {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "audio.jambonz.org".parse().expect("header"),
        );
    }
    request
}

async fn refused_with(request: tokio_tungstenite::tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
    }
}

/// `seconds` of a 440 Hz tone at 8 kHz, as 16-bit little-endian PCM.
fn tone(seconds: f64) -> Vec<u8> {
    let n = (8_000.0 * seconds) as usize;
    (0..n)
        .flat_map(|i| {
            let t = i as f64 / 8_000.0;
            let v = (f64::sin(2.0 * std::f64::consts::PI * 440.0 * t) * 12_000.0) as i16;
            v.to_le_bytes()
        })
        .collect()
}

/// Plays jambonz: the metadata frame, then `pcm` in 20 ms frames (320 bytes at 8 kHz), then
/// a close; returns the close frame the server sent, if it closed first.
async fn stream(listen: &Value, sid: &str, pcm: &[u8]) -> Option<(u16, String)> {
    let password = listen["wsAuth"]["password"].as_str().expect("password");
    let (mut socket, response) =
        tokio_tungstenite::connect_async(upgrade_request(listen, Some(password), true))
            .await
            .expect("upgrade");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "audio.jambonz.org"
    );
    let metadata = json!({"callSid": sid, "direction": "inbound", "from": "+33655555555",
        "to": NUMBER, "callStatus": "in-progress", "sampleRate": 8000, "mixType": "mono"});
    socket
        .send(WsMessage::text(metadata.to_string()))
        .await
        .expect("metadata");
    for chunk in pcm.chunks(320) {
        if socket
            .send(WsMessage::binary(chunk.to_vec()))
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = socket.close(None).await;
    let mut server_close = None;
    while let Some(Ok(frame)) = socket.next().await {
        if let WsMessage::Close(Some(frame)) = frame {
            server_close = Some((u16::from(frame.code), frame.reason.to_string()));
        }
    }
    server_close
}

async fn offer(s: &Setup) -> pb::Offer {
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.login(pb::LoginRequest::default())
        .await
        .expect("Login");
    let mut offers = desk
        .offers(pb::OffersRequest::default())
        .await
        .expect("Offers")
        .into_inner();
    loop {
        if let Some(Update::Offer(offer)) = next(&mut offers).await.update {
            return offer;
        }
    }
}

/// The data chunk of a WAV file after checking its header: mono, 16 bits, 8 kHz.
fn wav_samples(file: &[u8]) -> &[u8] {
    assert_eq!(&file[..4], b"RIFF");
    assert_eq!(&file[8..16], b"WAVEfmt ");
    assert_eq!(u16::from_le_bytes([file[20], file[21]]), 1, "PCM");
    assert_eq!(u16::from_le_bytes([file[22], file[23]]), 1, "mono");
    assert_eq!(u32::from_le_bytes(file[24..28].try_into().unwrap()), 8_000);
    assert_eq!(u16::from_le_bytes([file[34], file[35]]), 16, "16 bits");
    assert_eq!(&file[36..40], b"data");
    let len = u32::from_le_bytes(file[40..44].try_into().unwrap()) as usize;
    assert_eq!(file.len(), 44 + len);
    &file[44..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_downloads_the_samples_jambonz_streamed() {
    let s = setup(30).await;
    let sid = "jb-vm-1";
    let listen = s.to_voicemail(sid).await;
    assert_eq!(
        listen["url"],
        format!("ws://{}/voice/jambonz/listen/{sid}", s.server.http_addr)
    );
    assert_eq!(listen["maxLength"], 30);
    assert_eq!(listen["sampleRate"], 8000);
    assert_eq!(listen["mixType"], "mono");
    assert_eq!(listen["wsAuth"]["username"], "guichet");
    let password = listen["wsAuth"]["password"].as_str().unwrap().to_owned();

    // Refusals before the upgrade.
    assert_eq!(
        refused_with(upgrade_request(&listen, None, true)).await,
        401
    );
    assert_eq!(
        refused_with(upgrade_request(&listen, Some(&"0".repeat(64)), true)).await,
        401
    );
    assert_eq!(
        refused_with(upgrade_request(&listen, Some(&password), false)).await,
        400
    );
    // Another call's credentials do not open this one.
    let other = s.to_voicemail("jb-vm-other").await;
    let mut crossed = other.clone();
    crossed["url"] = listen["url"].clone();
    let other_password = other["wsAuth"]["password"].as_str().unwrap();
    assert_eq!(
        refused_with(upgrade_request(&crossed, Some(other_password), true)).await,
        401
    );
    // A call that is not recording: 404 (credentials right for it).
    let (status, _) = s
        .post(
            "/voice/jambonz/incoming",
            json!({"call_sid": "jb-menu", "from": "+33600000000", "to": NUMBER}),
        )
        .await;
    assert_eq!(status, 200);
    let mut menu = listen.clone();
    menu["url"] = json!(listen["url"].as_str().unwrap().replace(sid, "jb-menu"));
    let menu_password =
        guichet::channels::voice::listen::credentials(JAMBONZ_SECRET.as_bytes(), "jb-menu")
            .password;
    assert_eq!(
        refused_with(upgrade_request(&menu, Some(&menu_password), true)).await,
        404
    );

    // 1.5 s of audio streamed as jambonz does; the socket closed by "jambonz".
    let pcm = tone(1.5);
    let closed = stream(&listen, sid, &pcm).await;
    assert!(
        closed.is_none() || closed.as_ref().unwrap().0 == 1000,
        "{closed:?}"
    );
    // The listen's actionHook: the thanks and the hang-up.
    let hook = listen["actionHook"].as_str().unwrap();
    let (status, verbs) = s.post(hook, json!({"call_sid": sid})).await;
    assert_eq!(status, 200, "{verbs}");
    assert!(verbs[0]["text"]
        .as_str()
        .unwrap()
        .contains("Votre message est enregistré"));
    assert_eq!(verbs[1]["verb"], "hangup");

    let offer = offer(&s).await;
    let message = &offer.conversation[0];
    assert_eq!(message.id, format!("voice:jambonz:{sid}:voicemail"));
    assert_eq!(message.text, "Message vocal (2 s)");
    assert_eq!(message.meta["recording_duration_ms"], "1500");
    assert_eq!(message.meta["recording_sample_rate"], "8000");
    let file = &message.attachments[0];
    assert_eq!(file.name, format!("voicemail-{sid}.wav"));
    assert_eq!(file.content_type, "audio/wav");
    assert!(file.stored, "{file:?}");
    assert_eq!(file.size as usize, 44 + pcm.len());

    let response = s.client.get(&file.url).send().await.expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "audio/wav");
    let body = response.bytes().await.expect("body");
    assert_eq!(wav_samples(&body), pcm.as_slice(), "the same samples");
    // A player seeks with a range.
    let response = s
        .client
        .get(&file.url)
        .header("range", "bytes=44-1043")
        .send()
        .await
        .expect("range");
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.expect("body").as_ref(), &pcm[..1000]);

    // The call moved on: the stream URL is closed to it now.
    assert_eq!(
        refused_with(upgrade_request(&listen, Some(&password), true)).await,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_cut_at_max_length_and_bad_metadata_is_refused() {
    let s = setup(1).await;

    // Bad metadata: closed with 1008 and what is wrong; nothing filed from it.
    let listen = s.to_voicemail("jb-bad").await;
    let password = listen["wsAuth"]["password"].as_str().unwrap();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(upgrade_request(&listen, Some(password), true))
            .await
            .expect("upgrade");
    socket
        .send(WsMessage::text(
            json!({"callSid": "jb-bad", "sampleRate": 11025}).to_string(),
        ))
        .await
        .expect("metadata");
    let mut reason = None;
    while let Some(Ok(frame)) = socket.next().await {
        if let WsMessage::Close(Some(frame)) = frame {
            reason = Some((u16::from(frame.code), frame.reason.to_string()));
        }
    }
    let (code, why) = reason.expect("closed by the server");
    assert_eq!(code, 1008);
    assert!(why.contains("sampleRate"), "{why}");

    // Three seconds streamed to a one-second voicemail: 16,000 bytes kept, the socket closed.
    let sid = "jb-long";
    let listen = s.to_voicemail(sid).await;
    assert_eq!(listen["maxLength"], 1);
    let pcm = tone(3.0);
    let closed = stream(&listen, sid, &pcm).await;
    assert_eq!(
        closed,
        Some((1000, "maxLength reached".to_owned())),
        "the server closes at the cap"
    );
    // The caller hung up: the status callback, then the listen's actionHook.
    let (status, _) = s
        .post(
            "/voice/jambonz/status",
            json!({"call_sid": sid, "call_status": "completed"}),
        )
        .await;
    assert_eq!(status, 200);

    let offer = offer(&s).await;
    let message = &offer.conversation[0];
    assert_eq!(message.id, format!("voice:jambonz:{sid}:voicemail"));
    assert_eq!(message.meta["recording_duration_ms"], "1000");
    let file = &message.attachments[0];
    let body = s
        .client
        .get(&file.url)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    assert_eq!(wav_samples(&body), &pcm[..16_000]);
    let metrics = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for outcome in ["bad_metadata", "received", "capped"] {
        assert!(
            metrics.contains(&format!(
                "guichet_voicemail_streams_total{{outcome=\"{outcome}\"}} 1"
            )),
            "{outcome}: {metrics}"
        );
    }

    // Erasing the caller (GDPR) erases the recording: the link finds nothing any more.
    let id = offer.interaction.expect("interaction").id;
    let mut desk = s.server.desktop(&s.amelie_token);
    desk.accept(pb::InteractionAction {
        interaction_id: id.clone(),
        ..Default::default()
    })
    .await
    .expect("Accept");
    desk.complete(pb::CompleteRequest {
        interaction_id: id.clone(),
        wrap_up_code: "answered".into(),
        ..Default::default()
    })
    .await
    .expect("Complete");
    let root = s.server.supervisor(&s.admin_token);
    let erased = api_common::eventually(
        std::time::Duration::from_secs(60),
        "the interaction to end and the caller to be erased",
        || {
            let mut root = root.clone();
            async move {
                root.erase_contact(pb::EraseContactRequest {
                    contact: "+33655555555".into(),
                })
                .await
                .ok()
                .map(|r| r.into_inner())
            }
        },
    )
    .await;
    assert_eq!(erased.interaction_ids, vec![id]);
    let response = s.client.get(&file.url).send().await.expect("download");
    assert_eq!(response.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jambonz_transcription_becomes_the_voicemail_text() {
    let s = setup_with(30, true).await;
    let sid = "jb-said";
    let listen = s.to_voicemail(sid).await;
    assert_eq!(
        listen["transcribe"]["recognizer"],
        json!({"vendor": "google", "language": "fr-FR"})
    );
    let transcription_hook = listen["transcribe"]["transcriptionHook"]
        .as_str()
        .expect("transcriptionHook")
        .to_owned();
    let pcm = tone(0.5);
    stream(&listen, sid, &pcm).await;
    // An interim result is not kept; the final one is.
    for (text, is_final) in [
        ("Bonjour je", false),
        ("Bonjour, je rappelle demain.", true),
    ] {
        let (status, answer) = s
            .post(
                &transcription_hook,
                json!({"call_sid": sid, "speech": {"is_final": is_final, "language_code": "fr-FR",
                       "alternatives": [{"transcript": text, "confidence": 0.9}]}}),
            )
            .await;
        assert_eq!((status, answer), (200, json!([])));
    }
    let (status, verbs) = s
        .post(
            listen["actionHook"].as_str().unwrap(),
            json!({"call_sid": sid}),
        )
        .await;
    assert_eq!(status, 200, "{verbs}");
    assert_eq!(verbs[1]["verb"], "hangup");

    let offer = offer(&s).await;
    let message = &offer.conversation[0];
    assert_eq!(message.text, "Bonjour, je rappelle demain.");
    assert_eq!(
        message.meta["transcription"],
        "Bonjour, je rappelle demain."
    );
    let body = s
        .client
        .get(&message.attachments[0].url)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    assert_eq!(wav_samples(&body), pcm.as_slice());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_action_hook_waits_for_the_stream_to_end() {
    let s = setup(30).await;
    let sid = "jb-race";
    let listen = s.to_voicemail(sid).await;
    let password = listen["wsAuth"]["password"].as_str().unwrap();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(upgrade_request(&listen, Some(password), true))
            .await
            .expect("upgrade");
    socket
        .send(WsMessage::text(
            json!({"callSid": sid, "sampleRate": 8000, "mixType": "mono"}).to_string(),
        ))
        .await
        .expect("metadata");
    let pcm = tone(0.25);
    socket
        .send(WsMessage::binary(pcm.clone()))
        .await
        .expect("audio");
    // The actionHook comes while the socket is still open: its answer waits for the end.
    let hook = listen["actionHook"].as_str().unwrap().to_owned();
    let answered = {
        let client = s.client.clone();
        tokio::spawn(async move {
            json_post(
                &client,
                &hook,
                "jambonz-signature",
                JAMBONZ_SECRET,
                &json!({"call_sid": sid}),
            )
            .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!answered.is_finished(), "the hook waits for the stream");
    socket.close(None).await.expect("close");
    let (status, verbs) = answered.await.expect("hook");
    assert_eq!(status, 200, "{verbs}");
    assert_eq!(verbs[1]["verb"], "hangup");

    let offer = offer(&s).await;
    let body = s
        .client
        .get(&offer.conversation[0].attachments[0].url)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("body");
    assert_eq!(wav_samples(&body), pcm.as_slice());
}
