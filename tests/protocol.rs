//! The page-worker messages (src/protocol.rs): one example of every request and
//! reply goes through JSON and comes back equal, and a few are checked against
//! the exact shape the JavaScript writes (tags and field names).

use std::collections::BTreeMap;

use flatminima::protocol::*;
use serde_json::{json, Value};

/// Which variant a request is; the match has no wildcard, so a new variant
/// does not compile until it has an example below.
fn request_index(r: &Request) -> usize {
    match r {
        Request::Module { .. } => 0,
        Request::Configure { .. } => 1,
        Request::View { .. } => 2,
        Request::Resize { .. } => 3,
        Request::Play => 4,
        Request::Pause => 5,
        Request::Reset { .. } => 6,
        Request::Step { .. } => 7,
        Request::Settle { .. } => 8,
        Request::Study { .. } => 9,
        Request::Grid { .. } => 10,
        Request::GridCancel => 11,
        Request::Backend { .. } => 12,
        Request::Export { .. } => 13,
        Request::Import { .. } => 14,
        Request::ClearPinned { .. } => 15,
        Request::AddPoint { .. } => 16,
        Request::SetPoints { .. } => 17,
        Request::Show { .. } => 18,
        Request::Ensemble { .. } => 19,
        Request::Rescale { .. } => 20,
        Request::Panic => 21,
    }
}
const REQUEST_VARIANTS: usize = 22;

/// Same for replies.
fn reply_index(r: &Reply) -> usize {
    match r {
        Reply::Ready { .. } => 0,
        Reply::State(_) => 1,
        Reply::Frame { .. } => 2,
        Reply::Backend { .. } => 3,
        Reply::Study { .. } => 4,
        Reply::Grid { .. } => 5,
        Reply::Extras { .. } => 6,
        Reply::Answer { .. } => 7,
        Reply::Fatal { .. } => 8,
    }
}
const REPLY_VARIANTS: usize = 9;

fn requests() -> Vec<Request> {
    let sizes = BTreeMap::from([("loss".to_string(), (320.0, 180.0)), ("left".to_string(), (240.0, 240.0))]);
    vec![
        Request::Module { module: Transferred },
        Request::Configure { revision: 3, query: "lr=0.1&optimizer=sgd".into() },
        Request::View { view: ViewChange { speed: Some("max".into()), yaw: Some(0.25), ..ViewChange::default() } },
        Request::Resize { sizes, dpr: 2.0 },
        Request::Play,
        Request::Pause,
        Request::Reset { revision: 4 },
        Request::Step { id: 1, n: 10 },
        Request::Settle { id: 2 },
        Request::Study { id: 3, replicas: 4, steps: 200 },
        Request::Grid {
            id: 4,
            axes: "lr=0.01,0.1".into(),
            data_seeds: 3,
            seeds: 2,
            until_train_loss: Some(0.05),
            check_every: 25,
            workers: Some(3),
        },
        Request::GridCancel,
        Request::Backend { choice: BackendChoice::Gpu },
        Request::Export { id: 5, what: Export::Curves },
        Request::Import { id: 6, revision: 5, record: "{}".into() },
        Request::ClearPinned { id: 7, revision: 6 },
        Request::AddPoint { id: 8, revision: 7, side: 1, x: 12.5, y: 40.0, label: 1, split: Some(Split::Ood) },
        Request::SetPoints {
            id: 9,
            revision: 8,
            points: vec![MyPoint::Train(0.5, -1.25, 0), MyPoint::With(1.0, 2.0, 1, Split::Ood)],
        },
        Request::Show { side: 0, which: Solution::Average },
        Request::Ensemble { id: 10, side: 1, k: 5 },
        Request::Rescale { id: 11, side: 0, layer: 0, alpha: 10.0 },
        Request::Panic,
    ]
}

fn replies() -> Vec<Reply> {
    let settings = SettingsEcho {
        errors: vec![SettingError { setting: "lr".into(), message: "must be positive".into() }],
        effective: BTreeMap::from([("lr".to_string(), "0.1".to_string())]),
        query: "lr=0.1".into(),
        config: "{}".into(),
    };
    vec![
        Reply::Ready {
            palette: Palette { classes: vec!["#0072b2".into()], sides: vec!["#e69f00".into(), "#56b4e9".into()] },
            schema: Schema {
                settings: vec![json!({"name": "lr", "default": 0.1})],
                groups: vec![SchemaGroup { id: "optimiser".into(), title: "Optimiser".into() }],
                limits: Limits { study_replicas: 32, study_steps: 5000, study_params: 200_000 },
            },
        },
        Reply::State(State {
            revision: 3,
            playing: true,
            metrics: json!({"step": 10, "left": {"train_loss": 0.5}}),
            landscape: Value::Null,
            landscape_progress: 0.5,
            memory: Memory { heap: 1_048_576.0, live: 2048.0 },
            settings: Some(settings),
        }),
        Reply::Frame { revision: 3, bitmaps: BTreeMap::from([("left".to_string(), Transferred)]) },
        Reply::Backend {
            backend: Device::Cpu,
            notice: String::new(),
            note: "no GPU".into(),
            description: String::new(),
        },
        Reply::Study { progress: 0.25, backend: "CPU".into(), replicas: 4 },
        Reply::Grid { progress: 0.5, runs: 6, total: 12 },
        Reply::Extras { ensemble: 0.5, rescale: 0.0 },
        Reply::Answer { id: 1, value: Some(json!({"settings": "lr=0.1", "problems": []})), error: None, name: None },
        Reply::Fatal { message: "the module crashed".into() },
    ]
}

#[test]
fn every_request_round_trips_through_json() {
    let all = requests();
    let mut seen = [false; REQUEST_VARIANTS];
    for r in &all {
        seen[request_index(r)] = true;
        let text = serde_json::to_string(r).unwrap();
        let back: Request = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&back, r, "{text}");
    }
    assert!(seen.iter().all(|&s| s), "a request variant has no example: {seen:?}");
}

#[test]
fn every_reply_round_trips_through_json() {
    let all = replies();
    let mut seen = [false; REPLY_VARIANTS];
    for r in &all {
        seen[reply_index(r)] = true;
        let text = serde_json::to_string(r).unwrap();
        let back: Reply = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(&back, r, "{text}");
    }
    assert!(seen.iter().all(|&s| s), "a reply variant has no example: {seen:?}");
}

/// The study helper's messages (a second channel, worker to worker).
#[test]
fn the_study_helper_messages_round_trip() {
    let request = StudyHelperRequest::Start {
        query: "lr=0.1".into(),
        axes: "rho=0.05,0.2".into(),
        data_seeds: 4,
        seeds: 2,
        until_train_loss: None,
        check_every: 25,
    };
    let js = json!({"type": "start", "query": "lr=0.1", "axes": "rho=0.05,0.2", "dataSeeds": 4, "seeds": 2,
                    "untilTrainLoss": null, "checkEvery": 25});
    assert_eq!(serde_json::to_value(&request).unwrap(), js);
    assert_eq!(serde_json::from_value::<StudyHelperRequest>(js).unwrap(), request);
    // The units dealt to a helper (literals as www/flatminima-worker.js writes them).
    let trained = json!({"type": "trained", "unit": 3, "weights": [0.5, -1.0]});
    assert_eq!(
        serde_json::from_value::<StudyHelperRequest>(trained.clone()).unwrap(),
        StudyHelperRequest::Trained { unit: 3, weights: vec![0.5, -1.0] }
    );
    assert_eq!(
        serde_json::to_value(StudyHelperRequest::Trained { unit: 3, weights: vec![0.5, -1.0] }).unwrap(),
        trained
    );
    let here = json!({"type": "train-here", "unit": 5});
    assert_eq!(
        serde_json::from_value::<StudyHelperRequest>(here.clone()).unwrap(),
        StudyHelperRequest::TrainHere { unit: 5 }
    );
    assert_eq!(serde_json::to_value(StudyHelperRequest::TrainHere { unit: 5 }).unwrap(), here);
    let drop = json!({"type": "drop", "unit": 2});
    assert_eq!(
        serde_json::from_value::<StudyHelperRequest>(drop.clone()).unwrap(),
        StudyHelperRequest::Drop { unit: 2 }
    );
    assert_eq!(serde_json::to_value(StudyHelperRequest::Drop { unit: 2 }).unwrap(), drop);
    for m in [
        StudyHelperMessage::Progress { progress: 0.5, longest: 3.5 },
        StudyHelperMessage::Runs { numbers: vec![0.25, 1.0], longest: 4.0 },
        StudyHelperMessage::Error { message: "panicked".into() },
    ] {
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<StudyHelperMessage>(&text).unwrap(), m, "{text}");
    }
    assert_eq!(
        serde_json::to_value(StudyHelperMessage::Error { message: "x".into() }).unwrap(),
        json!({"type": "error", "message": "x"})
    );
}

/// The shapes the JavaScript writes (literals copied from www/flatminima-sandbox.js and
/// www/flatminima-worker.js) read as the variants they mean, and write back the same.
#[test]
fn messages_have_the_javascript_shapes() {
    let same = |js: Value, r: Request| {
        assert_eq!(serde_json::to_value(&r).unwrap(), js);
        assert_eq!(serde_json::from_value::<Request>(js).unwrap(), r);
    };
    same(json!({"type": "gridCancel"}), Request::GridCancel);
    same(json!({"type": "clear-pinned", "id": 7, "revision": 3}), Request::ClearPinned { id: 7, revision: 3 });
    same(
        json!({"type": "grid", "id": 1, "axes": "", "dataSeeds": 3, "seeds": 2, "untilTrainLoss": null, "checkEvery": 25, "workers": null}),
        Request::Grid {
            id: 1,
            axes: String::new(),
            data_seeds: 3,
            seeds: 2,
            until_train_loss: None,
            check_every: 25,
            workers: None,
        },
    );
    // An element of an older page leaves `workers` out: one per core.
    assert_eq!(
        serde_json::from_value::<Request>(
            json!({"type": "grid", "id": 1, "axes": "", "dataSeeds": 3, "seeds": 2, "untilTrainLoss": null, "checkEvery": 25})
        )
        .unwrap(),
        Request::Grid { id: 1, axes: String::new(), data_seeds: 3, seeds: 2, until_train_loss: None, check_every: 25, workers: None },
    );
    same(
        json!({"type": "view", "view": {"showOod": false}}),
        Request::View { view: ViewChange { show_ood: Some(false), ..ViewChange::default() } },
    );
    same(
        json!({"type": "set-points", "id": 2, "revision": 5, "points": [[0.5, 1.0, 1], [0.0, -2.0, 0, "ood"]]}),
        Request::SetPoints {
            id: 2,
            revision: 5,
            points: vec![MyPoint::Train(0.5, 1.0, 1), MyPoint::With(0.0, -2.0, 0, Split::Ood)],
        },
    );
    let answer = |js: Value, r: Reply| {
        assert_eq!(serde_json::to_value(&r).unwrap(), js);
        assert_eq!(serde_json::from_value::<Reply>(js).unwrap(), r);
    };
    answer(
        json!({"type": "reply", "id": 4, "error": "stopped", "name": "AbortError"}),
        Reply::Answer { id: 4, value: None, error: Some("stopped".into()), name: Some("AbortError".into()) },
    );
    answer(
        json!({"type": "state", "revision": 2, "playing": false, "metrics": null, "landscape": null,
               "landscapeProgress": 0.0, "memory": {"heap": 65536.0, "live": 0.0}}),
        Reply::State(State {
            revision: 2,
            playing: false,
            metrics: Value::Null,
            landscape: Value::Null,
            landscape_progress: 0.0,
            memory: Memory { heap: 65536.0, live: 0.0 },
            settings: None,
        }),
    );
}
