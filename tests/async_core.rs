//! The engine's core is asynchronous: its operations are futures that make progress only when
//! the device is polled (natively by `GpuContext::block_on`, in a browser by its event loop), so
//! they never block the thread that polls them; the blocking methods are these futures run by
//! `block_on`, with the same results.

mod common;

use std::future::Future;
use std::task::{Context, Poll, Waker};

use common::{decode, engine, root};
use gradcam::{Colormap, ExplainOptions, Method, Readback, Target, TargetScore};

/// Polls `future` once with a waker that does nothing, as an executor that must not block would.
fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::pin::Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn explain_async_never_blocks_and_equals_explain() {
    let engine = engine();
    let options = ExplainOptions {
        layer: "head".into(),
        method: Method::GradCam,
        colormap: Colormap::Jet,
        image_weight: 0.5,
        input_gradient: false,
        method_batch: None,
        guided: false,
        eigen_smooth: false,
        aug_smooth: false,
        samples: 4,
        noise_std: 0.3,
        seed: 0,
        metrics: Vec::new(),
        target_score: TargetScore::Softmax,
        metric_steps: 20,
    };
    let img = decode(&root().join("examples/images/chelsea.png"));
    let targets = [Target::Predicted];

    let mut blocking = engine.explainer(1, options.clone()).unwrap();
    let expected = blocking.explain(&[&img], &targets, Readback::ALL).unwrap();

    let mut explainer = engine.explainer(1, options).unwrap();
    let ctx = explainer.context().clone();
    let images = [&img];
    let mut future = Box::pin(explainer.explain_async(&images, &targets, Readback::ALL));
    // Nothing has polled the device: the readback cannot be mapped yet, and polling the future
    // returns at once instead of waiting for the GPU.
    assert!(poll_once(&mut future).is_pending());
    let mut polls = 1;
    let got = loop {
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .expect("device poll");
        polls += 1;
        if let Poll::Ready(out) = poll_once(&mut future) {
            break out.unwrap();
        }
        assert!(polls < 1000, "the future never completed");
    };
    drop(future);

    assert_eq!(got.len(), 1);
    assert_eq!(got[0].class, expected[0].class);
    assert_eq!(got[0].logits, expected[0].logits);
    assert_eq!(got[0].cam, expected[0].cam);
    assert_eq!(
        got[0].overlay.as_ref().map(|o| o.as_raw().clone()),
        expected[0].overlay.as_ref().map(|o| o.as_raw().clone())
    );
}

#[test]
fn classify_async_equals_classify() {
    let engine = engine();
    let img = decode(&root().join("examples/images/coffee.png"));
    let mut forward = engine.forward(1).unwrap();
    let expected = engine.classify(&mut forward, &[&img]).unwrap();
    let ctx = forward.context().clone();
    let got = ctx
        .block_on(engine.classify_async(&mut forward, &[&img]))
        .unwrap();
    assert_eq!(got, expected);
}
