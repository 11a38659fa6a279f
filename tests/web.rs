//! The browser layer in a real browser (headless Chrome via wasm-bindgen-test):
//! the core gives natively computed numbers bit for bit, a panel renders the
//! expected pixels, and bad settings give named errors and a working sandbox.
//!
//! `CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner cargo test --target wasm32-unknown-unknown --tests`
//! or `wasm-pack test --headless --chrome --chromedriver /usr/bin/chromedriver`.
#![cfg(target_arch = "wasm32")]

#[path = "support/golden.rs"]
mod golden;
#[path = "support/study_identity.rs"]
mod study_identity;

use flatminima::web::field::{data_to_grid, Field, GRID};
use flatminima::web::palette;
use flatminima::web::seed_study::SeedStudy;
use flatminima::web::Sandbox;
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn the_golden_run_matches_the_native_one_bit_for_bit() {
    let stored: Value = serde_json::from_str(include_str!("data/golden_run.json")).unwrap();
    let problems = golden::compare_with(&stored);
    assert!(problems.is_empty(), "wasm differs from the native golden run:\n{}", problems.join("\n"));
}

fn canvas(width: u32, height: u32) -> (HtmlCanvasElement, CanvasRenderingContext2d) {
    let document = web_sys::window().unwrap().document().unwrap();
    let canvas: HtmlCanvasElement = document.create_element("canvas").unwrap().dyn_into().unwrap();
    canvas.set_width(width);
    canvas.set_height(height);
    let ctx = canvas.get_context("2d").unwrap().unwrap().dyn_into().unwrap();
    (canvas, ctx)
}

fn pixel(ctx: &CanvasRenderingContext2d, x: f64, y: f64) -> [u8; 4] {
    let data = ctx.get_image_data(x.floor(), y.floor(), 1.0, 1.0).unwrap().data();
    [data[0], data[1], data[2], data[3]]
}

fn close(a: [u8; 4], b: palette::Rgb, tolerance: u8) -> bool {
    a[3] == 255 && (0..3).all(|i| a[i].abs_diff(b[i]) <= tolerance)
}

/// A trained sandbox on two moons, for the rendering tests.
fn trained() -> Sandbox {
    let mut sb = Sandbox::from_settings("dataset=moons&points=100&seed=3", 1);
    assert_eq!(sb.errors_json(), "[]");
    sb.step(300);
    sb
}

/// A grid cell (i, j) where the model gives `class` at least `p_min`, as do
/// all cells within `margin` of it, and no training point lies within
/// `margin` cells (points are drawn over the heatmap).
fn confident_cell(sb: &Sandbox, side: usize, class: usize, p_min: f64, margin: usize) -> Option<(usize, usize)> {
    let field = sb.field(side);
    let points: Vec<(f64, f64)> = sb.pair().splits.train.points.iter().map(|p| data_to_grid(p[0], p[1])).collect();
    (margin..GRID - margin).flat_map(|j| (margin..GRID - margin).map(move |i| (i, j))).find(|&(i, j)| {
        let near = |di: usize, dj: usize| field.probs_at(i + di - margin, j + dj - margin)[class] >= p_min;
        let all_sure = (0..=2 * margin).all(|dj| (0..=2 * margin).all(|di| near(di, dj)));
        let (u, v) = (i as f64 + 0.5, j as f64 + 0.5);
        all_sure && points.iter().all(|&(pu, pv)| (pu - u).abs() > margin as f64 || (pv - v).abs() > margin as f64)
    })
}

#[wasm_bindgen_test]
fn a_panel_shows_class_colours_where_the_model_is_sure_and_the_points_on_top() {
    let mut sb = trained();
    let (canvas, ctx) = canvas(420, 400);
    sb.draw_boundary(0, &canvas, false, 1.0).unwrap();
    let [x0, y0, size] = sb.plot_rect(0)[..] else { panic!("plot rect") };
    assert!(size > 300.0 && x0 > 0.0 && y0 >= 0.0, "the view fills most of the canvas: {x0} {y0} {size}");
    let cell = size / GRID as f64;

    // Confident regions of each class carry that class's tint.
    for class in 0..2 {
        let (i, j) =
            confident_cell(&sb, 0, class, 0.97, 3).unwrap_or_else(|| panic!("no confident cell of class {class}"));
        let expected = palette::heat_colour(sb.field(0).probs_at(i, j));
        let got = pixel(&ctx, x0 + (i as f64 + 0.5) * cell, y0 + (j as f64 + 0.5) * cell);
        assert!(
            close(got, expected, 6),
            "class {class} at cell ({i}, {j}): pixel {got:?}, expected about {expected:?}"
        );
        let pure = palette::class_colour(class);
        let other = palette::class_colour(1 - class);
        let dist = |c: palette::Rgb| (0..3).map(|k| (got[k] as i32 - c[k] as i32).abs()).sum::<i32>();
        assert!(dist(pure) < dist(other), "class {class}'s region looks more like the other class: {got:?}");
    }

    // An isolated training point is drawn in its class colour.
    let train = &sb.pair().splits.train;
    let rect_pixel = |p: &[f64; 2]| {
        let (u, v) = data_to_grid(p[0], p[1]);
        (x0 + u * cell, y0 + v * cell)
    };
    let isolated = (0..train.len())
        .find(|&a| {
            let (ax, ay) = rect_pixel(&train.points[a]);
            // No other marker (radius 3 + a 1 px white ring) reaches this one's centre.
            (0..train.len()).all(|b| {
                let (bx, by) = rect_pixel(&train.points[b]);
                a == b || (ax - bx).hypot(ay - by) > 6.0
            }) && ax > x0 + 10.0
                && ay > y0 + 10.0
                && ax < x0 + size - 10.0
                && ay < y0 + size - 10.0
        })
        .expect("an isolated training point");
    let (px, py) = rect_pixel(&train.points[isolated]);
    let got = pixel(&ctx, px, py);
    let colour = palette::class_colour(train.labels[isolated]);
    assert!(close(got, colour, 3), "training point {isolated} at ({px}, {py}): {got:?}, expected {colour:?}");

    // Outside the view (the axis margin) the canvas is white.
    assert!(close(pixel(&ctx, 2.0, 2.0), [255, 255, 255], 0));

    // The boundary line is dark where it runs clear of the points.
    let segments = &sb.field(0).segments;
    assert!(segments.len() >= 4 * 20, "a boundary of only {} segments", segments.len() / 4);
    let clear = segments
        .chunks_exact(4)
        .map(|s| (x0 + (s[0] + s[2]) / 2.0 * cell, y0 + (s[1] + s[3]) / 2.0 * cell))
        .find(|&(x, y)| {
            train.points.iter().all(|p| {
                let (px, py) = rect_pixel(p);
                (px - x).hypot(py - y) > 6.0
            })
        })
        .expect("a boundary segment away from the points");
    let got = pixel(&ctx, clear.0, clear.1);
    let sum: u32 = got[..3].iter().map(|&c| c as u32).sum();
    assert!(sum < 400, "the boundary at {clear:?} is not dark: {got:?}");
}

#[wasm_bindgen_test]
fn sgd_and_sam_panels_differ_and_ood_points_are_drawn_on_request() {
    let mut sb = trained();
    let (left, left_ctx) = canvas(300, 300);
    let (right, right_ctx) = canvas(300, 300);
    sb.draw_boundary(0, &left, false, 1.0).unwrap();
    sb.draw_boundary(1, &right, false, 1.0).unwrap();
    assert_ne!(sb.field(0).rgba, sb.field(1).rgba, "SGD and SAM give the same heatmap");
    let all = |ctx: &CanvasRenderingContext2d| ctx.get_image_data(0.0, 0.0, 300.0, 300.0).unwrap().data().0;
    let (a, b) = (all(&left_ctx), all(&right_ctx));
    let differing = a.chunks_exact(4).zip(b.chunks_exact(4)).filter(|(p, q)| p != q).count();
    assert!(differing > 100, "the two panels differ in only {differing} pixels");

    // With the OOD toggle on, more pixels change than the heatmap alone explains.
    let before = all(&left_ctx);
    sb.draw_boundary(0, &left, true, 1.0).unwrap();
    let after = all(&left_ctx);
    let changed = before.chunks_exact(4).zip(after.chunks_exact(4)).filter(|(p, q)| p != q).count();
    assert!(changed > 500, "the OOD points changed only {changed} pixels");
}

#[wasm_bindgen_test]
fn curves_are_drawn() {
    let mut sb = trained();
    sb.step(50);
    let (loss, loss_ctx) = canvas(400, 220);
    let (acc, acc_ctx) = canvas(400, 220);
    sb.draw_curves(&loss, &acc, 1.0).unwrap();
    for (name, ctx) in [("loss", loss_ctx), ("accuracy", acc_ctx)] {
        let data = ctx.get_image_data(0.0, 0.0, 400.0, 220.0).unwrap().data().0;
        let side_colour =
            |c: palette::Rgb| data.chunks_exact(4).filter(|p| close([p[0], p[1], p[2], p[3]], c, 10)).count();
        for (side, &colour) in palette::SIDE.iter().enumerate() {
            assert!(side_colour(colour) > 50, "{name}: side {side}'s curves are missing");
        }
    }
    // Tiny canvases are left alone rather than failing.
    let (tiny, _) = canvas(10, 10);
    sb.draw_curves(&tiny, &tiny, 1.0).unwrap();
    sb.draw_boundary(0, &tiny, true, 1.0).unwrap();
}

#[wasm_bindgen_test]
fn bad_settings_are_named_and_the_sandbox_still_works() {
    let mut sb = Sandbox::from_settings("rho=abc&dataset=spirals&lr=-1&colour=red", 1);
    let errors: Value = serde_json::from_str(&sb.errors_json()).unwrap();
    let named: Vec<&str> = errors.as_array().unwrap().iter().map(|e| e["setting"].as_str().unwrap()).collect();
    assert_eq!(named, ["colour", "lr", "rho"], "{errors}");
    let rho = &errors[2]["message"];
    assert!(rho.as_str().unwrap().contains("abc") && rho.as_str().unwrap().contains("using the default 0.2"), "{rho}");
    assert_eq!(sb.pair().config.data.dataset.name(), "spirals", "the good settings still apply");
    assert_eq!(sb.settings_query(), "dataset=spirals");

    assert_eq!(sb.step(25), 25);
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m["backend"], "cpu");
    for side in ["left", "right"] {
        assert_eq!(m[side]["step"], 25);
        assert_eq!(m[side]["diverged"], false);
        for key in ["train_loss", "train_acc", "id_loss", "id_acc", "ood_loss", "ood_acc"] {
            assert!(m[side][key].as_f64().is_some_and(f64::is_finite), "{side}.{key}: {}", m[side][key]);
        }
    }
    assert_eq!(m["right"]["label"], "SAM(rho=0.2)+SGD");

    // A bad value, or a query that is not one: named errors, the default run.
    for (text, named) in [("lr=fast", "lr"), ("{\"rho\": 1}", "{\"rho\": 1}")] {
        let sb = Sandbox::from_settings(text, 1);
        let errors: Value = serde_json::from_str(&sb.errors_json()).unwrap();
        assert_eq!(errors[0]["setting"], named, "{text}: {errors}");
        assert_eq!(sb.settings_query(), "");
    }
    // What URLSearchParams writes (spaces as +, commas as %2C) reads back as the page wrote it.
    let sb = Sandbox::from_settings("?hidden=8%2C4&rho=0.3", 1);
    assert_eq!(sb.errors_json(), "[]");
    assert_eq!(sb.pair().config.model.hidden, [8, 4]);
    assert!(sb.settings_query().contains("hidden=8,4"), "{}", sb.settings_query());
}

#[wasm_bindgen_test]
fn a_shift_change_keeps_training_and_anything_else_restarts() {
    let mut sb = Sandbox::from_settings("shift=rotate&severity=0", 1);
    sb.step(200);
    let m0: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    let restarted = sb.reconfigure("shift=rotate&severity=1", 2);
    assert!(!restarted, "a new severity must not restart the run");
    assert_eq!(sb.current_step(), 200);
    let m1: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m1["left"]["train_loss"], m0["left"]["train_loss"], "training data untouched");
    assert_eq!(m1["left"]["id_acc"], m0["left"]["id_acc"], "ID data untouched");
    assert_ne!(m1["left"]["ood_acc"], m0["left"]["ood_acc"], "the OOD set moved");
    assert_eq!(sb.settings_query(), "severity=1");

    assert!(sb.reconfigure("shift=rotate&severity=1&optimizer=adam", 3));
    assert_eq!(sb.current_step(), 0);
    assert!(!sb.reconfigure("shift=rotate&severity=1&optimizer=adam", 4), "same settings: nothing to do");

    sb.step(10);
    sb.reset(5);
    assert_eq!(sb.current_step(), 0);
}

#[wasm_bindgen_test]
fn train_for_stops_at_the_step_limit_and_at_its_budget() {
    let mut sb = Sandbox::from_settings("steps=120", 1);
    let mut total = 0;
    while !sb.finished() {
        total += sb.train_for(50, 5.0);
        assert!(total <= 120);
    }
    assert_eq!(total, 120);
    assert_eq!(sb.train_for(10, 5.0), 0, "a finished run takes no more steps");
    assert_eq!(sb.step(3), 3, "explicit steps go past the limit");

    // A huge step allowance with a small budget returns rather than training for minutes.
    let mut sb = Sandbox::from_settings("steps=10000000", 1);
    let done = sb.train_for(u32::MAX, 20.0);
    assert!(done > 0 && done < 1_000_000, "{done} steps in a 20 ms budget");
}

#[wasm_bindgen_test]
fn a_big_batch_trained_in_pieces_matches_whole_steps_bit_for_bit() {
    // 64,64,64 (8,642 parameters) with a batch of 600: the page works each step in
    // pieces of rows; a budget of 0 ms stops after each piece. Same bits as step(n),
    // and the metrics evaluated in pieces (metricsAdvance) equal an evaluation in one go.
    let settings = "hidden=64,64,64&points=600&batch-size=600&steps=3";
    let mut whole = Sandbox::from_settings(settings, 1);
    let mut pieces = Sandbox::from_settings(settings, 1);
    // New runs of a net this big owe their metrics at step 0 (the worker answers at once):
    // the snapshot shows them as null until metricsAdvance has worked them out in pieces,
    // then the runs' own logged metrics, with the bits of an evaluation.
    assert!(whole.metrics_stale(), "step 0's metrics are owed");
    let pending: Value = serde_json::from_str(&whole.metrics_json()).unwrap();
    assert!(pending["right"]["train_loss"].is_null() && pending["right"]["step"] == 0, "{pending}");
    let mut advances = 0;
    while whole.metrics_advance(0.0) {
        advances += 1;
        assert!(advances < 1000);
    }
    assert!(advances > 1 && !whole.metrics_stale(), "in pieces ({advances} calls)");
    assert_eq!(whole.pair().right.history.points.len(), 1, "logged by the run itself");
    let m: Value = serde_json::from_str(&whole.metrics_json()).unwrap();
    let e = whole.pair().right.clone().evaluate();
    assert_eq!(m["right"]["train_loss"].as_f64().map(f64::to_bits), Some(e.train_loss.to_bits()));
    assert_eq!(m["right"]["ood_acc"].as_f64().map(f64::to_bits), Some(e.ood_acc.to_bits()));
    assert_eq!(whole.step(3), 3);
    let mut calls = 0;
    while !pieces.finished() {
        pieces.train_for(u32::MAX, 0.0);
        calls += 1;
        assert!(calls < 1000);
    }
    assert!(calls > 6, "each step should take several pieces ({calls} calls)");
    // The other sandbox's step-0 metrics came first, in pieces of the training job: the same bits.
    assert_eq!(pieces.pair().right.history.points[0], whole.pair().right.history.points[0]);
    assert!(!pieces.step_under_way());
    let bits = |p: &[f64]| p.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&whole.pair().left.params), bits(&pieces.pair().left.params));
    assert_eq!(bits(&whole.pair().right.params), bits(&pieces.pair().right.params));
    assert!(pieces.metrics_stale(), "this net's metrics are evaluated in pieces");
    let mut advances = 0;
    while pieces.metrics_advance(0.0) {
        advances += 1;
        assert!(advances < 1000);
    }
    assert!(advances > 1 && !pieces.metrics_stale());
    assert_eq!(pieces.metrics_json(), whole.metrics_json());
    // A shift change re-evaluates only the OOD set of known metrics: still the bits of a full evaluation.
    let shifted = format!("{settings}&shift=rotate&severity=0.7");
    assert!(!pieces.reconfigure(&shifted, 2) && !whole.reconfigure(&shifted, 2), "a shift change keeps the runs");
    assert!(pieces.errors().is_empty() && pieces.pair().config.shift.severity == 0.7, "{:?}", pieces.errors());
    assert!(!pieces.metrics_stale(), "the OOD part was evaluated with the shift");
    let m: Value = serde_json::from_str(&pieces.metrics_json()).unwrap();
    let e = pieces.pair().left.clone().evaluate();
    for (key, value) in [("ood_loss", e.ood_loss), ("ood_acc", e.ood_acc), ("train_loss", e.train_loss)] {
        assert_eq!(m["left"][key].as_f64().map(f64::to_bits), Some(value.to_bits()), "{key}");
    }
    assert_eq!(pieces.metrics_json(), whole.metrics_json());
}

#[wasm_bindgen_test]
fn a_diverging_side_stops_and_says_why() {
    let mut sb = Sandbox::from_settings("lr=50&right=plain&right-optimizer=adam", 1);
    sb.step(300);
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m["left"]["diverged"], true, "{m}");
    let step = m["left"]["diverged_step"].as_u64().unwrap();
    assert!(m["left"]["diverged_reason"].as_str().unwrap().contains("too large"), "{m}");
    assert!(m["left"]["train_loss"].as_f64().is_some(), "the last finite metrics are reported: {m}");
    sb.step(10);
    let m2: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m2["left"]["diverged_step"].as_u64().unwrap(), step, "a diverged side stays stopped");
    // Drawing a diverged side still works (grey where the output is undefined).
    let (c, _) = canvas(200, 200);
    sb.draw_boundary(0, &c, true, 1.0).unwrap();
    sb.draw_curves(&c, &c, 1.0).unwrap();
}

#[wasm_bindgen_test]
fn the_fast_heatmap_forward_matches_the_core_for_every_activation() {
    use flatminima::pair::Pair;
    use flatminima::settings::config_from_settings;
    use flatminima::web::field::{grid_to_data, Field};
    for (activation, dataset, classes) in
        [("tanh", "moons", "2"), ("relu", "spirals", "2"), ("gelu", "blobs", "5"), ("sigmoid", "xor", "2")]
    {
        let settings = [("activation", activation), ("dataset", dataset), ("classes", classes), ("hidden", "12,9,7")];
        let (config, errors) = config_from_settings(settings);
        assert!(errors.is_empty());
        let mut pair = Pair::new(config).unwrap();
        pair.train(150);
        let mut field = Field::new();
        field.update(&pair.left);
        let points: Vec<f64> = (0..GRID * GRID)
            .flat_map(|c| {
                let (x, y) = grid_to_data((c % GRID) as f64 + 0.5, (c / GRID) as f64 + 0.5);
                [x, y]
            })
            .collect();
        let k = pair.left.mlp.classes;
        let mut exact = vec![0.0; GRID * GRID * k];
        pair.left.predict_proba(&points, &mut exact);
        let mut worst = 0.0f64;
        for c in 0..GRID * GRID {
            let fast = field.probs_at(c % GRID, c / GRID);
            for (a, b) in fast.iter().zip(&exact[c * k..(c + 1) * k]) {
                worst = worst.max((a - b).abs());
            }
        }
        console_log!("{activation}: max |fast - exact| probability difference {worst:.1e}");
        assert!(worst < 1e-4, "{activation}: the heatmap's probabilities differ from the core's by {worst}");
    }
}

/// Non-white pixels in a canvas (something was drawn).
fn inked(ctx: &CanvasRenderingContext2d, w: u32, h: u32) -> usize {
    let data = ctx.get_image_data(0.0, 0.0, w as f64, h as f64).unwrap().data();
    data.chunks_exact(4).filter(|p| p[3] > 0 && (p[0] < 245 || p[1] < 245 || p[2] < 245)).count()
}

#[wasm_bindgen_test]
fn the_landscape_fills_in_progressively_and_matches_the_core() {
    let mut sb = trained();
    assert_eq!(
        sb.landscape_configure("hessain", 9, 64),
        "directions: expected random, hessian or pca, got \"hessain\""
    );
    assert!(sb.landscape_configure("random", 500, 64).starts_with("grid: expected 3..=101"));
    assert_eq!(sb.landscape_configure("random", 9, 64), "");
    // A tiny budget computes a little; the view is there but incomplete.
    let first = sb.landscape_advance(0.0);
    assert!(first > 0.0 && first < 1.0, "progress {first}");
    let partial: Value = serde_json::from_str(&sb.landscape_json(false)).unwrap();
    assert_eq!(partial["complete"], false);
    let mut rounds = 0;
    while sb.landscape_advance(5.0) < 1.0 {
        rounds += 1;
        assert!(rounds < 10_000, "the landscape never finished");
    }
    let full: Value = serde_json::from_str(&sb.landscape_json(true)).unwrap();
    assert_eq!(full["complete"], true);
    assert_eq!(full["kind"], "random");
    assert_eq!(full["steps"], serde_json::json!([300, 300]));
    // The surface at (0, 0) is the loss at the solution, on the same 64-point subset the job used.
    for (i, side) in ["left", "right"].into_iter().enumerate() {
        let surface = &full[side]["surface"];
        assert_eq!(surface["alphas"].as_array().unwrap().len(), 9);
        let centre = surface["train"][4 * 9 + 4].as_f64().unwrap();
        let run = if i == 0 { &sb.pair().left } else { &sb.pair().right };
        let subset = flatminima::landscape::subset(
            &run.splits.train,
            64,
            sb.pair().config.seed,
            flatminima::landscape::Split::Train,
        );
        let exact = run.mlp.evaluate(&run.params, subset.flat_points(), &subset.labels, &mut Default::default()).0;
        assert!((centre - exact).abs() < 1e-12, "{side}: surface centre {centre} vs L(w) {exact}");
        assert!(full[side]["ood"]["mean_rise"].as_f64().unwrap().is_finite());
    }
    // Everything draws, and an up-to-date landscape does no more work.
    let (contour, cctx) = canvas(300, 300);
    let (cube, dctx) = canvas(300, 300);
    let (line, lctx) = canvas(400, 220);
    sb.draw_surface(1, &contour, &cube, "ood", 0.6, 0.45, 1.0).unwrap();
    sb.draw_slice(0, &line, 1.0).unwrap();
    assert!(inked(&cctx, 300, 300) > 20_000, "the contour view is mostly empty");
    assert!(inked(&dctx, 300, 300) > 5_000, "the 3D view is mostly empty");
    assert!(inked(&lctx, 400, 220) > 2_000, "the slice is empty");
    sb.draw_interpolation(&line, 1.0).unwrap();
    assert_eq!(sb.landscape_advance(5.0), 1.0);
    // Training on makes it stale: a new one starts, and the old stays drawable meanwhile.
    sb.step(10);
    assert!(sb.landscape_advance(0.0) < 1.0);
    let shown: Value = serde_json::from_str(&sb.landscape_json(false)).unwrap();
    assert_eq!(shown["steps"], serde_json::json!([300, 300]), "the complete landscape stays on screen");
    // A new plane kind cancels at once.
    assert_eq!(sb.landscape_configure("hessian", 9, 64), "");
    assert_eq!(sb.landscape_json(false), "null");
    while sb.landscape_advance(5.0) < 1.0 {}
    let hessian: Value = serde_json::from_str(&sb.landscape_json(false)).unwrap();
    assert_eq!(hessian["kind"], "hessian");
    let e = hessian["left"]["eigenvalues"].as_array().unwrap();
    assert!(e[0].as_f64().unwrap() >= e[1].as_f64().unwrap());
}

#[wasm_bindgen_test]
fn sharpness_is_measured_a_stage_at_a_time_and_reported_in_metrics() {
    let mut sb = trained();
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert!(m["left"]["sharpness"].is_null(), "nothing measured yet");
    assert!(sb.sharpness_busy(false));
    let mut calls = 0;
    while sb.sharpness_busy(false) {
        sb.sharpness_advance(0.0, false);
        calls += 1;
        assert!(calls < 100);
    }
    assert!(calls >= 12, "one measure per call, two sides: {calls} calls");
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    for side in ["left", "right"] {
        let s = &m[side]["sharpness"];
        assert_eq!(s["step"], 300);
        for key in ["lambda_max", "trace", "eps_sharpness", "rho_sharpness", "adaptive_sharpness", "average_sharpness"]
        {
            assert!(s[key].as_f64().is_some_and(f64::is_finite), "{side}.sharpness.{key}: {}", s[key]);
        }
        // SGD with momentum 0.9 at lr 0.1: (2 + 2 beta) / lr, from the core, with its source.
        assert!((s["edge_of_stability"].as_f64().unwrap() - 38.0).abs() < 1e-12, "{}", s["edge_of_stability"]);
        assert!(s["edge_of_stability_label"].as_str().unwrap().contains("Cohen et al. 2021"));
        assert!(s["spectrum_step"].is_null(), "the spectrum waits for a pause");
    }
    // Paused: the spectra come, one side per call.
    assert!(sb.sharpness_advance(0.0, true));
    assert!(sb.sharpness_advance(0.0, true));
    assert!(!sb.sharpness_busy(true));
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m["right"]["sharpness"]["spectrum_step"], 300);
    let (lambda, lctx) = canvas(400, 220);
    let (spectrum, sctx) = canvas(400, 220);
    sb.draw_sharpness(&lambda, &spectrum, 1.0).unwrap();
    assert!(inked(&lctx, 400, 220) > 1_000 && inked(&sctx, 400, 220) > 1_000);
    // A reset forgets the measurements.
    sb.reset(2);
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert!(m["left"]["sharpness"].is_null());
}

/// One revision says which runs a result belongs to: a GPU boundary asked before
/// a reset (the element's next revision) is dropped, and the new runs are asked
/// for; a surface asked for a landscape that was replaced meanwhile is dropped,
/// and its side is asked again for the new one once that answer is in.
#[wasm_bindgen_test]
fn answers_for_replaced_runs_or_landscapes_are_dropped() {
    use flatminima::backend::requests::{BoundaryRequest, SurfaceRequest};

    let mut sb = Sandbox::from_settings("points=80&seed=2", 1);
    sb.step(5);
    sb.set_gpu("test adapter");
    let old: BoundaryRequest = serde_json::from_str(&sb.boundary_request()).unwrap();
    sb.reset(2);
    assert_eq!(sb.boundary_answer(&old.run_cpu()), "", "dropped, not an error");
    let new: BoundaryRequest = serde_json::from_str(&sb.boundary_request()).unwrap();
    assert_ne!(new.params, old.params, "the field of the new runs (step 0) is still wanted");

    // Surfaces: the CPU does everything but them.
    let only_surfaces_left = |sb: &mut Sandbox| {
        let (mut last, mut calls) = (-1.0, 0);
        loop {
            let progress = sb.landscape_advance(50.0);
            if progress == last {
                break;
            }
            (last, calls) = (progress, calls + 1);
            assert!(calls < 1000);
        }
        assert!(last < 1.0);
    };
    sb.step(5);
    assert_eq!(sb.landscape_configure("random", 9, 32), "");
    only_surfaces_left(&mut sb);
    let stale: SurfaceRequest = serde_json::from_str(&sb.surface_request()).unwrap();
    assert_eq!(stale.side, 0);
    assert_eq!(sb.landscape_configure("hessian", 9, 32), "", "a new plane: a new landscape");
    only_surfaces_left(&mut sb);
    let right: SurfaceRequest = serde_json::from_str(&sb.surface_request()).unwrap();
    assert_eq!(right.side, 1, "side 0's old request is still out");
    assert_eq!(sb.surface_request(), "");
    assert_eq!(sb.surface_answer(0, &stale.run_cpu()), "", "the old plane's surface is dropped");
    let left: SurfaceRequest = serde_json::from_str(&sb.surface_request()).unwrap();
    assert_eq!(left.side, 0);
    assert_ne!(left.plane, stale.plane, "asked for the new plane");
    assert_eq!(sb.surface_answer(0, &left.run_cpu()), "");
    assert_eq!(sb.surface_answer(1, &right.run_cpu()), "");
    assert_eq!(sb.landscape_advance(50.0), 1.0, "the new landscape is complete");
}

/// The sandbox's side of the GPU backend, with the CPU answering in the GPU
/// module's place (the GPU itself is tested natively and in tests/e2e/gpu.test.mjs):
/// requests go out once, answers are taken, stale ones dropped, and the result
/// is what the CPU path draws.
#[wasm_bindgen_test]
fn gpu_requests_and_answers_give_what_the_cpu_path_gives() {
    use flatminima::backend::requests::{BoundaryRequest, SurfaceRequest};

    let mut sb = Sandbox::from_settings("points=80&seed=2", 1);
    let mut reference = Sandbox::from_settings("points=80&seed=2", 1);
    for s in [&mut sb, &mut reference] {
        s.step(40);
        assert_eq!(s.landscape_configure("random", 9, 32), "");
    }
    assert_eq!(sb.boundary_request(), "", "no GPU, no requests");
    sb.set_gpu("test adapter");
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m["backend"], "gpu");

    // Boundaries: one request at a time, the answer becomes the field.
    let text = sb.boundary_request();
    assert_eq!(sb.boundary_request(), "", "one in flight");
    let request: BoundaryRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(sb.boundary_answer(&request.run_cpu()), "");
    assert_eq!(sb.boundary_request(), "", "answered for these steps");
    let (canvas, _) = canvas(200, 200);
    sb.draw_boundary(0, &canvas, true, 1.0).unwrap();
    reference.draw_boundary(0, &canvas, true, 1.0).unwrap();
    let (a, b) = (sb.field(0).probs_at(40, 70)[0], reference.field(0).probs_at(40, 70)[0]);
    assert!((a - b).abs() < 1e-5, "gpu-path field {a} vs cpu field {b}");
    assert_eq!(sb.boundary_answer(&[0.5; 3]), "", "no request is out: a late answer is dropped");
    assert_eq!(sb.field(0).probs_at(40, 70)[0], a, "and changes nothing");
    sb.step(1);
    reference.step(1);
    assert!(!sb.boundary_request().is_empty(), "the runs moved: a new request");
    assert!(sb.boundary_answer(&[0.5; 3]).contains("3 probabilities"), "a wrong length is named");

    // Surfaces: the CPU does everything but them, then takes the answers.
    let (mut last, mut calls) = (-1.0, 0);
    loop {
        let progress = sb.landscape_advance(50.0);
        if progress == last {
            break; // only the surfaces are left
        }
        (last, calls) = (progress, calls + 1);
        assert!(calls < 1000);
    }
    assert!(last < 1.0);
    let mut answered = 0;
    loop {
        let text = sb.surface_request();
        if text.is_empty() {
            break;
        }
        let request: SurfaceRequest = serde_json::from_str(&text).unwrap();
        let values = request.run_cpu();
        assert_eq!(sb.surface_answer(request.side as u32, &values), "");
        assert_eq!(sb.surface_answer(request.side as u32, &[f64::NAN]), "", "nothing out: a late answer is dropped");
        answered += 1;
    }
    assert_eq!(answered, 2);
    assert_eq!(sb.landscape_advance(50.0), 1.0);
    while reference.landscape_advance(50.0) < 1.0 {}
    assert_eq!(sb.landscape_json(true), reference.landscape_json(true), "the same landscape either way");

    // Back on the CPU: no more requests.
    sb.set_gpu("");
    assert_eq!(sb.surface_request(), "");
    assert_eq!(sb.boundary_request(), "");

    // A study of seeds on the CPU (the study module's), a few steps per call,
    // from the sandbox's settings query: it reports both sides.
    let query = sb.settings_query();
    let clock = || js_sys::Date::now();
    assert!(SeedStudy::new(&query, 0, 10, clock()).err().is_some_and(|e| e.contains("replicas")));
    let mut study = SeedStudy::new(&query, 3, 20, clock()).unwrap();
    assert_eq!(study.result_json(), None);
    let mut calls = 0;
    while study.advance(1.0, clock) < 1.0 {
        calls += 1;
        assert!(calls < 10_000);
    }
    let report: Value = serde_json::from_str(&study.result_json().unwrap()).unwrap();
    assert_eq!(report["backend"], "cpu");
    assert_eq!(report["left"]["replicas"].as_array().unwrap().len(), 3);
    assert_eq!(report["paired"]["pairs"], 3);
    assert!(report["right"]["ood_acc"]["mean"].as_f64().is_some_and(|v| (0.0..=1.0).contains(&v)));
}

/// A big net's field takes several draws (a band of rows each); the page keeps
/// showing the last complete one, and the finished field is the same as one
/// computed at once. A training step meanwhile does not restart it.
#[wasm_bindgen_test]
fn a_big_nets_field_is_computed_over_several_draws() {
    let settings = "hidden=64,64,64,64,64,64&points=50&seed=4";
    let mut sb = Sandbox::from_settings(settings, 1);
    let mut reference = Sandbox::from_settings(settings, 1);
    let (canvas, _) = canvas(200, 200);
    let mut draws = 1;
    while sb.draw_boundary(0, &canvas, false, 1.0).unwrap() {
        if draws == 1 {
            sb.step(1); // the field under way is for step 0: finished first
            reference.step(1);
        }
        draws += 1;
        assert!(draws < 200, "the field must finish");
    }
    assert!(draws > 10, "21122 parameters: more than one band ({draws} draws)");
    let at_once = |sandbox: &Sandbox| {
        let mut field = Field::new();
        field.update(&sandbox.pair().left);
        field.probs_at(40, 70).to_vec()
    };
    assert_eq!(sb.field(0).probs_at(40, 70), at_once(&Sandbox::from_settings(settings, 1)), "step 0's field, complete");
    // The next draws bring it to step 1.
    while sb.draw_boundary(0, &canvas, false, 1.0).unwrap() {}
    assert_eq!(sb.field(0).probs_at(40, 70), at_once(&reference), "then step 1's");
    assert_ne!(at_once(&reference), at_once(&Sandbox::from_settings(settings, 1)), "the step changed the field");
}

#[wasm_bindgen_test]
fn the_page_s_grid_study_equals_the_native_one_byte_for_byte() {
    use flatminima::web::grid_study::PageGrid;
    use study_identity as id;
    // Bad input is refused by name.
    let bad = |query: &str, axes: &str, draws: usize| PageGrid::new(query, axes, draws, 1, f64::NAN, 10).err().unwrap();
    assert!(bad(id::QUERY, "lr=abc", 1).contains("lr=abc"));
    assert!(bad(id::QUERY, "nonsense=1,2", 1).contains("nonsense"));
    assert!(bad(id::QUERY, "lr=0.1", 0).contains("data-seeds"));
    assert!(bad(id::QUERY, "lr=0.1,0.2", 4000).contains("more than the page's"));
    assert!(bad("lr=-5", "", 1).contains("lr"));
    let mut grid =
        PageGrid::new(id::QUERY, id::AXES, id::DATA_SEEDS, id::SEEDS, id::UNTIL_TRAIN_LOSS, id::CHECK_EVERY).unwrap();
    assert!(grid.deal(4, None).unwrap_err().contains("4 units"), "2 lr x 2 draws");
    for u in 0..grid.units() {
        grid.deal(u, None).unwrap();
    }
    // A fake clock that moves 1 ms per reading: each call does a piece or two.
    let clock = std::cell::Cell::new(0.0);
    let now = || {
        clock.set(clock.get() + 1.0);
        clock.get()
    };
    let (mut calls, mut last) = (0, 0.0);
    while last < 1.0 {
        let p = grid.advance(1.0, now).unwrap();
        assert!(p >= last && p <= 1.0, "progress {last} -> {p}");
        assert_eq!(grid.result_json().is_some(), p >= 1.0);
        last = p;
        calls += 1;
    }
    assert!(calls > 16 * 8, "a piece per call, got {calls} calls");
    assert_eq!(grid.counts()[..2], [16.0, 16.0]);
    let (got, want) = (grid.result_json().unwrap(), id::FIXTURE.trim_end());
    if got != want {
        // Where they part, not 30 KB of JSON.
        let at = got.bytes().zip(want.bytes()).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        let window = |s: &str| s.get(at.saturating_sub(120)..(at + 80).min(s.len())).unwrap_or("").to_string();
        panic!("wasm differs from the native study at byte {at}:\n wasm:   {}\n native: {}", window(got), window(want));
    }
}

#[wasm_bindgen_test]
fn an_ensembles_field_is_the_mean_of_its_members_probabilities() {
    use flatminima::config::RunConfig;
    use flatminima::ensemble::{ensemble_proba, train_ensemble};
    use flatminima::model::{Mlp, Workspace};
    use flatminima::web::field::grid_to_data;
    let mut config = RunConfig::default();
    config.training.steps = 40;
    let (_, members) = train_ensemble(&config, 1, 3).unwrap();
    let mlp = Mlp::new(2, &config.model, config.classes());
    let mut field = Field::new();
    let refs: Vec<&[f64]> = members.iter().map(Vec::as_slice).collect();
    field.begin_members(&mlp, &refs);
    flatminima::job::finish(&mut field, &mut ());
    let points: Vec<f64> = (0..GRID * GRID)
        .flat_map(|c| {
            let (x, y) = grid_to_data((c % GRID) as f64 + 0.5, (c / GRID) as f64 + 0.5);
            [x, y]
        })
        .collect();
    let k = mlp.classes;
    let mut exact = vec![0.0; GRID * GRID * k];
    ensemble_proba(&mlp, &members, &points, &mut exact, &mut Workspace::new());
    let mut worst = 0.0f64;
    for c in 0..GRID * GRID {
        for (a, b) in field.probs_at(c % GRID, c / GRID).iter().zip(&exact[c * k..(c + 1) * k]) {
            worst = worst.max((a - b).abs());
        }
    }
    // A single member's field is not the ensemble's (so the test can tell them apart).
    let mut one = Field::new();
    one.begin_members(&mlp, &refs[..1]);
    flatminima::job::finish(&mut one, &mut ());
    let apart =
        (0..GRID * GRID).map(|c| (one.probs_at(c % GRID, c / GRID)[0] - exact[c * k]).abs()).fold(0.0, f64::max);
    console_log!("ensemble field: max |fast - exact| {worst:.1e}; one member differs by up to {apart:.2}");
    assert!(worst < 1e-4, "the ensemble's heatmap differs from the core's mean probabilities by {worst}");
    assert!(apart > 1e-2, "one member's field should differ from the ensemble's ({apart})");
}

#[wasm_bindgen_test]
fn rescaling_a_side_keeps_its_function_clears_its_optimiser_and_is_measured() {
    let mut sb = Sandbox::from_settings("activation=relu&steps=100&points=64&average=swa&average-start=10", 1);
    sb.step(40);
    let before = sb.pair().left.params.clone();
    let average_before = sb.pair().left.average.as_ref().unwrap().params.clone();
    let right_before = sb.pair().right.params.clone();
    assert_eq!(sb.rescale_start(0, 0, 3.0), "");
    let left = &sb.pair().left;
    assert_eq!(left.optimizer.steps, 0, "the optimiser's state is cleared");
    assert_eq!(sb.pair().right.optimizer.steps, 40, "the other side is untouched");
    assert_eq!(sb.pair().right.params, right_before);
    // Layer 0 of 2-16-16-2: 32 weights and 16 biases times 3, layer 1's 256 weights divided by 3.
    for k in 0..48 {
        assert_eq!(left.params[k], before[k] * 3.0, "param {k}");
        assert_eq!(left.average.as_ref().unwrap().params[k], average_before[k] * 3.0, "average param {k}");
    }
    for (k, (now, was)) in left.params.iter().zip(&before).enumerate().take(48 + 256).skip(48) {
        assert_eq!(*now, was / 3.0, "param {k}");
    }
    assert_eq!(left.params[48 + 256..], before[48 + 256..]);
    // Measured a piece at a time, then the comparison.
    let mut calls = 0;
    while sb.rescale_json().is_empty() {
        sb.extras_advance(5.0, true);
        calls += 1;
        assert!(calls < 10_000, "the rescaling's measurements never finished");
    }
    let r: Value = serde_json::from_str(&sb.rescale_json()).unwrap();
    assert!(r["max_logit_change"].as_f64().unwrap() < 1e-9, "{r}");
    for k in ["train_acc", "id_acc", "ood_acc"] {
        assert_eq!(r["before"][k], r["after"][k], "{k}");
    }
    let (b, a) = (r["before"]["lambda_max"].as_f64().unwrap(), r["after"]["lambda_max"].as_f64().unwrap());
    assert!((a / b).ln().abs() > 0.1, "lambda_max {b} -> {a}");
    // The rescaled weights' measurement is the side's newest; training goes on from them.
    let m: Value = serde_json::from_str(&sb.metrics_json()).unwrap();
    assert_eq!(m["left"]["sharpness"]["lambda_max"].as_f64(), Some(a));
    assert_eq!(sb.step(5), 5);
    // Not for tanh: the function would change.
    let mut tanh = Sandbox::from_settings("activation=tanh", 1);
    assert!(tanh.rescale_start(1, 0, 2.0).contains("only for ReLU"), "{}", tanh.rescale_start(1, 0, 2.0));
    assert!(tanh.rescale_start(1, 5, 2.0).contains("ReLU"));
    let mut relu = Sandbox::from_settings("activation=relu", 1);
    assert!(relu.rescale_start(1, 2, 2.0).contains("no next layer"), "the output layer has none to compensate");
    assert!(relu.rescale_start(1, 0, -1.0).contains("positive"));
}

/// A fake clock that moves 1 ms per reading.
fn fake_clock() -> impl Fn() -> f64 {
    let clock = std::cell::Cell::new(0.0);
    move || {
        clock.set(clock.get() + 1.0);
        clock.get()
    }
}

/// The study's units dealt out as the page deals them, to whichever worker
/// is free: the element's worker's study (it collects) and two helpers', in
/// no particular order, one unit dealt twice and one dropped half-way.
/// Whoever trains which unit, the same bytes as one worker's study.
#[wasm_bindgen_test]
fn the_page_s_grid_study_dealt_to_three_workers_equals_the_native_one_byte_for_byte() {
    use flatminima::web::grid_study::PageGrid;
    use study_identity as id;
    let (q, a, d, s, l, c) = (id::QUERY, id::AXES, id::DATA_SEEDS, id::SEEDS, id::UNTIL_TRAIN_LOSS, id::CHECK_EVERY);
    let now = fake_clock();
    let mut first = PageGrid::new(q, a, d, s, l, c).unwrap();
    let mut helpers = [PageGrid::helper(q, a, d, s, l, c).unwrap(), PageGrid::helper(q, a, d, s, l, c).unwrap()];
    // Nothing dealt: every worker waits.
    assert!(first.advance(5.0, &now).unwrap() < 1.0 && first.holds() == 0 && first.counts()[..2] == [0.0, 16.0]);
    assert!(helpers[0].advance(5.0, &now).unwrap() == 0.0 && helpers[0].take_numbers().is_empty());
    // Helper 0 gets units 3 and 0, helper 1 unit 1 (and a copy of 3), the element's worker unit 2.
    helpers[0].deal(3, None).unwrap();
    helpers[0].deal(0, None).unwrap();
    helpers[1].deal(1, None).unwrap();
    helpers[1].deal(3, None).unwrap();
    first.deal(2, None).unwrap();
    assert_eq!(helpers[0].holds(), 2);
    // Helper 1 gets unit 1 under way, then drops it (as if a copy had come in first) and deals it again.
    while helpers[1].unit_progress() < 0.2 {
        helpers[1].advance(1.0, &now).unwrap();
    }
    assert!(helpers[1].drop_unit(1) && !helpers[1].drop_unit(1) && helpers[1].holds() == 1);
    helpers[1].deal(1, None).unwrap();
    while helpers[0].holds() > 0 {
        helpers[0].advance(5.0, &now).unwrap();
    }
    let part = helpers[0].take_numbers();
    assert!(first.add_runs(&part[1..]).is_err(), "not whole runs");
    first.add_runs(&part).unwrap();
    let mut collected = first.take_collected();
    collected.sort();
    assert_eq!(collected, [0, 3]);
    assert_eq!(first.collected_units(), 2);
    // A unit in again (a copy finished later) is taken if it is the same to the bit, refused if not.
    first.add_runs(&part).unwrap();
    assert!(first.take_collected().is_empty());
    let mut tampered = part.clone();
    tampered[10] += 1e-9; // a train loss
    assert!(first.add_runs(&tampered).unwrap_err().contains("differ"));
    let mut reseeded = part.clone();
    reseeded[7] += 1.0; // a run's seed: not the unit's run
    assert!(first.add_runs(&reseeded).unwrap_err().contains("not a unit"));
    while helpers[1].holds() > 0 {
        helpers[1].advance(5.0, &now).unwrap();
    }
    first.add_runs(&helpers[1].take_numbers()).unwrap();
    assert!(first.result_json().is_none(), "unit 2 is not in yet");
    // The last unit in; a copy that comes in while the statistics run is still checked, and changes nothing.
    let mut last = PageGrid::helper(q, a, d, s, l, c).unwrap();
    last.deal(2, None).unwrap();
    while last.holds() > 0 {
        last.advance(5.0, &now).unwrap();
    }
    let late = last.take_numbers();
    while first.collected_units() < 4 {
        first.advance(5.0, &now).unwrap();
    }
    first.advance(5.0, &now).unwrap();
    assert_eq!(first.take_collected(), [1, 2], "helper 1's unit, then its own");
    first.add_runs(&late).unwrap();
    assert!(first.take_collected().is_empty() && first.collected_units() == 4);
    let mut tampered = late.clone();
    tampered[10] += 1e-9;
    assert!(first.add_runs(&tampered).unwrap_err().contains("differ"));
    while first.advance(5.0, &now).unwrap() < 1.0 {}
    assert!(first.result_json().unwrap() == id::FIXTURE.trim_end(), "three workers differ from one study");
}

/// Units trained elsewhere (the GPU module): dealt with their runs' weights,
/// measured here; weights that do not fit are refused by name, and units
/// dealt to train here give the one-worker study's bytes.
#[wasm_bindgen_test]
fn a_grid_study_measures_units_trained_elsewhere() {
    use flatminima::web::grid_study::PageGrid;
    use study_identity as id;
    let mut grid =
        PageGrid::new(id::QUERY, id::AXES, id::DATA_SEEDS, id::SEEDS, id::UNTIL_TRAIN_LOSS, id::CHECK_EVERY).unwrap();
    let now = fake_clock();
    assert!(grid.deal(0, Some(&[0.5; 7])).unwrap_err().contains("weights"), "not whole runs");
    // This grid stops at a target loss: weights trained elsewhere do not fit it.
    assert!(grid.deal(0, Some(&vec![0.1; 4 * 354])).unwrap_err().contains("do not fit"));
    assert_eq!(grid.holds(), 0, "nothing was dealt");
    for u in [1, 0, 3, 2] {
        grid.deal(u, None).unwrap();
    }
    while grid.advance(5.0, &now).unwrap() < 1.0 {}
    assert!(grid.result_json().unwrap() == id::FIXTURE.trim_end(), "units trained here give the one-worker bytes");
    // Fixed steps: weights that fit are measured (the GPU's f32 training is checked in tests/e2e/gpu.test.mjs).
    let mut fixed = PageGrid::new(id::QUERY, id::AXES, 1, 1, f64::NAN, id::CHECK_EVERY).unwrap();
    assert!(fixed.deal(0, Some(&vec![0.1; 2 * 355])).unwrap_err().contains("do not fit"), "354 parameters");
    fixed.deal(0, Some(&vec![0.1; 2 * 354])).unwrap();
    fixed.deal(1, None).unwrap();
    while fixed.advance(5.0, &now).unwrap() < 1.0 {}
    let out: Value = serde_json::from_str(fixed.result_json().unwrap()).unwrap();
    let runs = out["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["train_acc"], runs[1]["train_acc"], "the same weights on both sides of unit 0");
    assert_ne!(runs[0]["train_acc"], runs[2]["train_acc"], "unit 1 trained here");
}

/// The CLI's default measures (the dense Hessian and its eigenvalues) give
/// the native bits in wasm too (the page's own measures are checked above).
#[wasm_bindgen_test]
fn a_grid_study_with_the_dense_spectrum_equals_the_native_one_byte_for_byte() {
    use flatminima::study_grid::Grid;
    let out = Grid::new(study_identity::spec(true)).unwrap().run(None, |_, _| {});
    let got = serde_json::to_value(&out).unwrap().to_string();
    assert!(got == study_identity::FIXTURE_EXACT.trim_end(), "wasm differs from the native study (dense spectrum)");
}
