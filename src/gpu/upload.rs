//! Uploads through one persistently reused, mapped buffer. `Queue::write_buffer` stages every
//! write in freshly allocated memory, whose first touch costs a page fault per 4 KiB: at a batch
//! of 256 photos (144 MB of RGB8) that held the host copy to 4 GB/s on an H200's host. Here the
//! same memory is written batch after batch: after each copy to the GPU is submitted the buffer
//! is mapped again, which completes while the GPU works, so the next batch finds it ready.
//! Where mapping cannot be waited for (a browser), or a mapping failed, it falls back to
//! `write_buffer_with`.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use super::GpuContext;
use crate::error::{Error, Result};

const UNMAPPED: u8 = 0;
const MAPPED: u8 = 1;
const FAILED: u8 = 2;

/// A reusable upload buffer (MAP_WRITE | COPY_SRC) and whether it is mapped.
#[derive(Debug, Default)]
pub struct Upload {
    buffer: Option<wgpu::Buffer>,
    state: Arc<AtomicU8>,
    /// The submission of the last copy out of `buffer`: its mapping completes after it.
    copied: Option<wgpu::SubmissionIndex>,
}

impl Upload {
    /// No buffer yet: the first write makes one of the size it needs.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the upload buffer.
    pub fn gpu_bytes(&self) -> u64 {
        self.buffer.as_ref().map_or(0, wgpu::Buffer::size)
    }

    /// Writes `parts` one after another to the start of `dst`, then zeros up to `len` bytes (a
    /// multiple of 4, at least the parts' total): copied into the mapped buffer and submitted
    /// as a buffer copy, which runs before any work submitted afterwards.
    pub fn write(
        &mut self,
        ctx: &GpuContext,
        dst: &wgpu::Buffer,
        parts: &[&[u8]],
        len: usize,
    ) -> Result<()> {
        let failed = self.state.load(Ordering::Acquire) == FAILED;
        if cfg!(target_arch = "wasm32") || failed || len == 0 {
            return write_queued(ctx, dst, parts, len);
        }
        let len64 = len as u64;
        if self.buffer.as_ref().is_none_or(|b| b.size() < len64) {
            // Grown geometrically, like the buffer it feeds.
            let size = len64.next_power_of_two().max(4 << 20);
            self.buffer = Some(ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("upload"),
                size,
                usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            }));
            self.state = Arc::new(AtomicU8::new(MAPPED));
            self.copied = None;
        }
        let buffer = self.buffer.as_ref().expect("made above");
        // The mapping asked for after the previous copy completes when the device is polled
        // once that copy is done (not the work submitted after it).
        let mut wait = self.copied.take();
        while self.state.load(Ordering::Acquire) == UNMAPPED {
            let poll = match wait.take() {
                Some(index) => wgpu::PollType::Wait {
                    submission_index: Some(index),
                    timeout: None,
                },
                None => wgpu::PollType::wait_indefinitely(),
            };
            ctx.device
                .poll(poll)
                .map_err(|e| upload_error(e.to_string()))?;
        }
        if self.state.load(Ordering::Acquire) == FAILED {
            return write_queued(ctx, dst, parts, len);
        }
        {
            let mut view = buffer
                .slice(..len64)
                .get_mapped_range_mut()
                .map_err(|e| upload_error(e.to_string()))?;
            pack(parts, len, |range, bytes| {
                view.slice(range).copy_from_slice(bytes)
            });
        }
        buffer.unmap();
        self.state.store(UNMAPPED, Ordering::Release);
        let mut encoder = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("upload"),
            });
        encoder.copy_buffer_to_buffer(buffer, 0, dst, 0, len64);
        self.copied = Some(ctx.queue.submit([encoder.finish()]));
        let state = self.state.clone();
        buffer.slice(..).map_async(wgpu::MapMode::Write, move |r| {
            state.store(if r.is_ok() { MAPPED } else { FAILED }, Ordering::Release);
        });
        Ok(())
    }
}

/// The fallback: wgpu's own staging (`write_buffer_with`).
fn write_queued(ctx: &GpuContext, dst: &wgpu::Buffer, parts: &[&[u8]], len: usize) -> Result<()> {
    let Some(size) = wgpu::BufferSize::new(len as u64) else {
        return Ok(());
    };
    let mut view = ctx
        .queue
        .write_buffer_with(dst, 0, size)
        .ok_or_else(|| upload_error(format!("cannot stage {len} bytes")))?;
    pack(parts, len, |range, bytes| {
        view.slice(range).copy_from_slice(bytes)
    });
    Ok(())
}

/// Writes `parts` one after another, then zeros up to `len`, through `write(range, bytes)`
/// (both kinds of write-only view).
fn pack(parts: &[&[u8]], len: usize, mut write: impl FnMut(std::ops::Range<usize>, &[u8])) {
    let mut at = 0;
    for part in parts {
        write(at..at + part.len(), part);
        at += part.len();
    }
    write(at..len, &vec![0u8; len - at]);
}

fn upload_error(reason: String) -> Error {
    Error::Gpu {
        stage: "upload".into(),
        reason,
    }
}
