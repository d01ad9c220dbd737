//! One whole job: the DAG, the assembly and the report, on any executor. The CLI and
//! the tests call it; its files appear only when all three are complete.

use std::{sync::Arc, time::Instant};
use storyreel_pipeline::{
    JobOutput, JobSpec, PipelineError, Settings, StageExecutor,
    assemble::{Artifacts, AssemblySettings, assemble},
    progress::{Event, ProgressSink, Step},
    report::Report,
};
use storyreel_tensors::TensorStore;

/// A finished job: its files and what the DAG produced.
pub struct Finished {
    pub artifacts: Artifacts,
    pub output: JobOutput,
}

/// Runs `spec` to its MP4, .srt and JSON report in `assembly.out_dir`.
pub async fn run_job(
    spec: &JobSpec,
    settings: &Settings,
    assembly: &AssemblySettings,
    executor: &dyn StageExecutor,
    store: Arc<dyn TensorStore>,
    sink: &dyn ProgressSink,
) -> Result<Finished, PipelineError> {
    let started = Instant::now();
    let output = storyreel_pipeline::run(spec, settings, executor, sink).await?;
    sink.emit(Event::Started {
        step: Step::Assembly,
        scene: None,
    });
    let staged = assemble(spec, &output, store, assembly).await?;
    sink.emit(Event::Finished {
        step: Step::Assembly,
        scene: None,
        cache_hit: false,
        seconds: staged.stats.seconds,
    });
    let report = Report::new(spec, &output, &staged.stats, started.elapsed().as_secs_f64()).to_json();
    let artifacts = staged.commit(&report).await?;
    Ok(Finished { artifacts, output })
}
