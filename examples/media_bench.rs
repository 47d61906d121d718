//! Image pipeline benchmark: prints how long one 12 MP photo takes to become
//! every stored size, how many photos a second the bounded processor gets
//! through, and the peak memory of many uploads at once.
//!
//! ```text
//! cargo run --release --example media_bench -- [--runs 20] [--images 16]
//! ```
//!
//! The upload is made here: a 4000 × 3000 JPEG (quality 90) of gradients under
//! per-pixel noise, so decoding, scaling and encoding cost what a camera photo
//! costs (a flat colour would cost almost nothing). Figures:
//! - `sequential`: `process_image` on this thread, `--runs` times, p50/p99;
//!   then one decode alone and the resize to 1280 alone with each candidate
//!   resizer, to show where the time goes and why fast_image_resize.
//! - `throughput`: `--images` photos submitted 4 at a time to an
//!   `ImageProcessor` with one permit per core: photos per second.
//! - `memory`: 8 photos submitted at once, with one permit per core and then
//!   with 8 permits; the process's peak resident memory (VmHWM, reset before
//!   each phase through /proc/self/clear_refs) shows what the permits bound.
//!   See `bench/README.md`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bytes::Bytes;
use clap::Parser;
use fast_image_resize::{
    FilterType as FirFilter, PixelType, ResizeAlg, ResizeOptions, Resizer,
    images::{Image as FirImage, ImageRef},
};
use image::{
    Rgb, RgbImage,
    codecs::jpeg::JpegEncoder,
    imageops::{self, FilterType},
};
use kith::domain::media::{ImageProcessor, ImageRules, process_image};
use tokio::sync::Semaphore;

// The same allocator as the `kith` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "kith image pipeline benchmark")]
struct Args {
    /// Sequential runs of the whole pipeline.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Photos put through the processor for the throughput figure.
    #[arg(long, default_value_t = 16)]
    images: usize,
}

fn photo(width: u32, height: u32) -> RgbImage {
    let mut seed: u32 = 0x9E37_79B9;
    RgbImage::from_fn(width, height, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let noise = (seed % 24) as u8;
        let wave = ((x / 7 + y / 11) % 40) as u8;
        Rgb([
            ((x * 180 / width) as u8).saturating_add(noise),
            ((y * 180 / height) as u8).saturating_add(wave),
            (((x + y) * 120 / (width + height)) as u8).saturating_add(noise / 2 + wave),
        ])
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Peak resident memory since the last reset, in MiB.
fn peak_rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("VmHWM")?;
    Ok(kib / 1024.0)
}

fn current_rss_mib() -> anyhow::Result<f64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("VmRSS")?;
    Ok(kib / 1024.0)
}

/// Sets the peak to the present resident size (Linux ≥ 4.0).
fn reset_peak_rss() -> anyhow::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5").context("resetting VmHWM")
}

async fn submit_all(
    processor: &ImageProcessor,
    upload: &Bytes,
    count: usize,
    at_once: usize,
) -> anyhow::Result<Duration> {
    let gate = Arc::new(Semaphore::new(at_once));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let slot = gate.clone().acquire_owned().await?;
        let processor = processor.clone();
        let upload = upload.clone();
        tasks.spawn(async move {
            let processed = processor.process(upload).await;
            drop(slot);
            processed
                .map(|_| ())
                .map_err(|err| anyhow::anyhow!("{err:?}"))
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(started.elapsed())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let profile = if cfg!(debug_assertions) {
        "debug (figures mean nothing)"
    } else {
        "release"
    };
    let source = photo(4000, 3000);
    let mut upload = Vec::new();
    JpegEncoder::new_with_quality(&mut upload, 90).encode_image(&source)?;
    let upload = Bytes::from(upload);
    let rules = ImageRules::default();
    println!(
        "setup: {profile}, {cores} cores, upload 4000×3000 JPEG q90 of {:.2} MiB, sizes {:?}",
        upload.len() as f64 / (1 << 20) as f64,
        rules.sizes
    );

    // Sequential.
    let processed = process_image(&upload, &rules).map_err(|err| anyhow::anyhow!("{err:?}"))?;
    let outputs: Vec<String> = processed
        .variants
        .iter()
        .map(|v| {
            format!(
                "{}×{} {:.0} KiB",
                v.width,
                v.height,
                v.bytes.len() as f64 / 1024.0
            )
        })
        .collect();
    println!(
        "outputs: {}; placeholder {} chars",
        outputs.join(", "),
        processed.placeholder.len()
    );
    reset_peak_rss()?;
    let before = current_rss_mib()?;
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let started = Instant::now();
        process_image(&upload, &rules).map_err(|err| anyhow::anyhow!("{err:?}"))?;
        times.push(millis(started.elapsed()));
    }
    times.sort_by(f64::total_cmp);
    println!(
        "sequential: n={} p50={:.0} ms p99={:.0} ms max={:.0} ms; peak RSS {:.0} MiB (from {:.0} MiB)",
        times.len(),
        percentile(&times, 50.0),
        percentile(&times, 99.0),
        times.last().copied().unwrap_or(f64::NAN),
        peak_rss_mib()?,
        before,
    );

    // Where the time goes.
    let best_of = |runs: usize, work: &mut dyn FnMut()| {
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                work();
                millis(started.elapsed())
            })
            .fold(f64::INFINITY, f64::min)
    };
    let decode = best_of(3, &mut || {
        image::load_from_memory(&upload).expect("decodes");
    });
    let (width, height) = (1280, 960);
    let mut resizer = Resizer::new();
    let fir = |filter: FirFilter, resizer: &mut Resizer| {
        let src = ImageRef::new(4000, 3000, source.as_raw(), PixelType::U8x3).expect("buffer");
        let mut dst = FirImage::new(width, height, PixelType::U8x3);
        resizer
            .resize(
                &src,
                &mut dst,
                &ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter)),
            )
            .expect("resizes");
    };
    let fir_lanczos = best_of(3, &mut || fir(FirFilter::Lanczos3, &mut resizer));
    let fir_bilinear = best_of(3, &mut || fir(FirFilter::Bilinear, &mut resizer));
    let image_lanczos = best_of(2, &mut || {
        imageops::resize(&source, width, height, FilterType::Lanczos3);
    });
    let image_triangle = best_of(2, &mut || {
        imageops::resize(&source, width, height, FilterType::Triangle);
    });
    let small = imageops::resize(&source, width, height, FilterType::Triangle);
    let encode = best_of(3, &mut || {
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 82)
            .encode_image(&small)
            .expect("encodes");
    });
    println!(
        "parts (best of 2-3): decode 12 MP {decode:.0} ms; resize 4000×3000→1280×960: \
         fast_image_resize Lanczos3 {fir_lanczos:.1} ms, Bilinear {fir_bilinear:.1} ms, \
         image Lanczos3 {image_lanczos:.0} ms, Triangle {image_triangle:.0} ms; \
         JPEG q82 encode 1280×960 {encode:.1} ms"
    );

    // Throughput through the processor, 4 submitted at a time.
    let processor = ImageProcessor::new(rules.clone(), cores);
    let elapsed = submit_all(&processor, &upload, args.images, 4).await?;
    println!(
        "throughput: {} photos, 4 at a time, {cores} permits: {:.2} s, {:.2} photos/s",
        args.images,
        elapsed.as_secs_f64(),
        args.images as f64 / elapsed.as_secs_f64()
    );

    // Memory: 8 at once, bounded by the permits and then not.
    for permits in [cores, 8] {
        let processor = ImageProcessor::new(rules.clone(), permits);
        reset_peak_rss()?;
        let before = current_rss_mib()?;
        let elapsed = submit_all(&processor, &upload, 8, 8).await?;
        println!(
            "memory: 8 photos at once, {permits} permits: peak RSS {:.0} MiB (from {:.0} MiB), {:.2} s",
            peak_rss_mib()?,
            before,
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
