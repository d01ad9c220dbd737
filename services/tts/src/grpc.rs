//! The thin gRPC adapter: per call it validates the request (INVALID_ARGUMENT naming the
//! field and limit), begins the call's context (`storyreel_stage::CallContext`: one
//! deadline from the job, the gRPC deadline and the server's request timeout; a span; the
//! latency metric, a stream's at its end), calls [`Tts`] under it, and converts the answer
//! or the error (through `storyreel_runtime::to_status`).

use crate::{
    TtsStage,
    service::{Segment, StreamEvent, Synthesis, WordTiming},
    validation::{validate_stream, validate_synthesize},
    voice::{Backend, VoiceDescription},
};
use futures::StreamExt;
use storyreel_proto::tts::{
    self as wire, AudioChunk, AudioEncoding, ListVoicesRequest, ListVoicesResponse, SceneEnd, StreamHeader,
    SynthesizeResponse, SynthesizeStreamResponse, TextSegment, VoiceBackend,
    synthesize_stream_response::Event, tts_service_server::TtsService,
};
use storyreel_runtime::{tensor_ref, to_status};
use storyreel_stage::Adapter;
use tonic::{Request, Response, Status};

/// The tonic service over any [`crate::Tts`].
#[derive(Clone)]
pub struct TtsGrpc(pub Adapter<TtsStage>);

impl TtsGrpc {
    /// The voices requests are validated against; UNAVAILABLE while they are loading (or
    /// failed to load).
    fn voices(&self) -> Result<Vec<VoiceDescription>, Status> {
        let voices = self.0.service.voices();
        if voices.is_empty() {
            let reason = match &*self.0.service.model_state().borrow() {
                storyreel_runtime::ModelState::Failed(reason) => reason.clone(),
                _ => "the voices are loading".into(),
            };
            return Err(to_status(&crate::TtsError::NotReady { reason }));
        }
        Ok(voices)
    }
}

#[tonic::async_trait]
impl TtsService for TtsGrpc {
    async fn synthesize(
        &self,
        request: Request<wire::SynthesizeRequest>,
    ) -> Result<Response<SynthesizeResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let mut request =
            validate_synthesize(message, &self.voices()?, &adapter.config).map_err(|e| to_status(&e))?;
        let context =
            adapter
                .calls
                .begin_request("synthesize", &metadata, &request.job, &mut request.deadline)?;
        let result = context.unary(adapter.service.synthesize(request)).await?;
        Ok(Response::new(result.into()))
    }

    type SynthesizeStreamStream =
        futures::stream::BoxStream<'static, Result<SynthesizeStreamResponse, Status>>;

    async fn synthesize_stream(
        &self,
        request: Request<wire::SynthesizeStreamRequest>,
    ) -> Result<Response<Self::SynthesizeStreamStream>, Status> {
        let (metadata, _, message) = request.into_parts();
        let adapter = &self.0;
        let (mut request, encoding, chunk_samples) =
            validate_stream(message, &self.voices()?, &adapter.config).map_err(|e| to_status(&e))?;
        let context = adapter.calls.begin_request(
            "synthesize_stream",
            &metadata,
            &request.job,
            &mut request.deadline,
        )?;
        let events = adapter
            .service
            .synthesize_stream(request, chunk_samples)
            .map(move |event| event.map(|e| stream_message(e, encoding)));
        Ok(Response::new(context.stream(events)))
    }

    async fn list_voices(
        &self,
        request: Request<ListVoicesRequest>,
    ) -> Result<Response<ListVoicesResponse>, Status> {
        let language = request.into_inner().language.to_lowercase();
        let served = self.voices()?;
        // the served voices come default first ("auto" resolved at start)
        let default = served.first().map(|v| v.id.clone()).unwrap_or_default();
        let mut voices: Vec<wire::Voice> = served
            .into_iter()
            .filter(|v| {
                language.is_empty()
                    || v.languages
                        .iter()
                        .any(|l| l.to_lowercase().starts_with(&language))
            })
            .map(|v| voice_message(v, &default))
            .collect();
        voices.sort_by_key(|v| !v.is_default);
        Ok(Response::new(ListVoicesResponse { voices }))
    }
}

fn voice_message(v: VoiceDescription, default: &str) -> wire::Voice {
    wire::Voice {
        is_default: v.id == default,
        id: v.id,
        display_name: v.display_name,
        backend: match v.backend {
            Backend::EspeakNg => VoiceBackend::EspeakNg,
            Backend::Piper => VoiceBackend::Piper,
        } as i32,
        languages: v.languages,
        native_sample_rate_hz: v.native_sample_rate,
        licence: v.licence,
        model: Some(v.model.into()),
    }
}

fn segments(segments: Vec<Segment>) -> Vec<TextSegment> {
    segments
        .into_iter()
        .map(|s| TextSegment {
            text: s.text,
            start_s: s.start_s,
            end_s: s.end_s,
        })
        .collect()
}

fn word_timings(words: Vec<WordTiming>) -> Vec<wire::WordTiming> {
    words
        .into_iter()
        .map(|w| wire::WordTiming {
            word: w.word,
            start_s: w.start_s,
            end_s: w.end_s,
        })
        .collect()
}

/// Samples in the stream's encoding.
pub fn encode(samples: &[f32], encoding: AudioEncoding) -> Vec<u8> {
    match encoding {
        AudioEncoding::PcmF32le => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
        _ => samples
            .iter()
            .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
            .collect(),
    }
}

fn stream_message(event: StreamEvent, encoding: AudioEncoding) -> SynthesizeStreamResponse {
    let event = match event {
        StreamEvent::Header {
            model,
            voice,
            sample_rate,
        } => Event::Header(StreamHeader {
            model: Some(model.into()),
            voice,
            sample_rate_hz: sample_rate,
            encoding: encoding as i32,
        }),
        StreamEvent::Samples {
            scene_index,
            offset,
            samples,
        } => Event::Chunk(AudioChunk {
            scene_index,
            sample_offset: offset,
            pcm: encode(&samples, encoding).into(),
        }),
        StreamEvent::SceneEnd {
            scene_index,
            total_samples,
            duration_s,
            segments: s,
            words,
        } => Event::SceneEnd(SceneEnd {
            scene_index,
            total_samples,
            duration_s,
            segments: segments(s),
            words: word_timings(words),
        }),
    };
    SynthesizeStreamResponse { event: Some(event) }
}

impl From<Synthesis> for SynthesizeResponse {
    fn from(s: Synthesis) -> Self {
        SynthesizeResponse {
            scenes: s
                .scenes
                .into_iter()
                .map(|scene| wire::SceneAudio {
                    scene_index: scene.scene_index,
                    audio: Some(tensor_ref::to_wire(&scene.audio)),
                    duration_s: scene.duration_s,
                    sample_rate_hz: scene.sample_rate,
                    segments: segments(scene.segments),
                    words: word_timings(scene.words),
                })
                .collect(),
            model: Some(s.model.into()),
            voice: s.voice,
            stats: Some(s.stats.into()),
        }
    }
}
