//! diffusers' `UNet2DConditionModel`, and with motion modules `UNetMotionModel`: the
//! keyframe stage's noise predictor.
//!
//! VarStore paths equal diffusers' attribute names: `conv_in`, `time_embedding.linear_1`,
//! `down_blocks.N.{resnets,attentions,motion_modules,downsamplers}`, `mid_block...`,
//! `up_blocks.N...`, `conv_norm_out`, `conv_out`. A base UNet checkpoint and a
//! MotionAdapter checkpoint hold disjoint halves of the motion UNet's names, so the two
//! files load together, strictly, into one VarStore.

use std::path::Path;

use tch::{Device, Kind, Tensor, nn, nn::Module};

use super::{
    ClassEmbedding, UNet2DConditionConfig,
    blocks::{BlockOptions, DownBlock, MidBlock, UpBlock},
};
use crate::{
    DType, DeviceSpec,
    diffusion::{
        Activation, AttentionNaming, DiffusionError,
        embeddings::{TimestepEmbedding, timestep_embedding},
        motion::{MotionAdapterConfig, MotionLayout, MotionModuleOptions},
        resnet::ResnetOptions,
        transformer_2d::Transformer2DOptions,
    },
    layers::{conv2d, embedding, group_norm},
    weights::load_strict,
};

/// `class_embedding`: added to the time embedding (the x4 upscaler's noise level).
#[derive(Debug)]
enum ClassEmbed {
    None,
    Table(nn::Embedding),
    Timestep(TimestepEmbedding),
}

/// The UNet, with or without motion modules.
#[derive(Debug)]
pub struct UNet {
    conv_in: nn::Conv2D,
    time_embedding: TimestepEmbedding,
    class_embedding: ClassEmbed,
    down_blocks: Vec<DownBlock>,
    mid_block: MidBlock,
    up_blocks: Vec<UpBlock>,
    conv_norm_out: nn::GroupNorm,
    conv_out: nn::Conv2D,
    config: UNet2DConditionConfig,
    /// `Timesteps(block_out_channels[0], flip_sin_to_cos, freq_shift)`; the motion UNet
    /// always uses (true, 0), as diffusers' `UNetMotionModel`.
    time_flip: bool,
    time_shift: f64,
    /// `conv_act`: the config's `act_fn` (SiLU in the motion UNet).
    act: Activation,
    has_motion: bool,
    num_upsamplers: u32,
    device: Device,
    /// The weights' dtype; inputs are cast to it.
    kind: Kind,
}

impl UNet {
    /// Declares an image UNet (`UNet2DConditionModel`) under `p`.
    pub fn new_2d(
        p: &nn::Path,
        config: &UNet2DConditionConfig,
        naming: AttentionNaming,
    ) -> Result<Self, DiffusionError> {
        Self::build(p, config, naming, None)
    }

    /// Declares a video UNet (`UNetMotionModel.from_unet2d(unet, adapter)`) under `p`.
    pub fn new_motion(
        p: &nn::Path,
        config: &UNet2DConditionConfig,
        adapter: &MotionAdapterConfig,
        naming: AttentionNaming,
        layout: MotionLayout,
    ) -> Result<Self, DiffusionError> {
        Self::build(p, config, naming, Some((adapter, layout)))
    }

    fn build(
        p: &nn::Path,
        c: &UNet2DConditionConfig,
        naming: AttentionNaming,
        motion: Option<(&MotionAdapterConfig, MotionLayout)>,
    ) -> Result<Self, DiffusionError> {
        c.validate()?;
        let blocks = c.blocks()?;
        let n = c.block_out_channels.len();
        let groups = c.norm_num_groups.expect("validated");
        let motion = match motion {
            Some((adapter, layout)) => Some((adapter.resolve(n, &blocks.layers_per_block)?, layout)),
            None => None,
        };
        let motion_options = |heads: i64, layers: i64| {
            motion.as_ref().map(|(_, layout)| MotionModuleOptions {
                in_channels: 0,
                heads,
                num_layers: layers,
                norm_num_groups: groups,
                max_seq_length: layout.max_seq_length,
                pe_in_checkpoint: layout.pe_in_checkpoint,
                naming,
            })
        };
        let ch0 = c.block_out_channels[0];
        let temb_dim = c.time_embed_dim();
        let resnet = ResnetOptions {
            in_channels: 0,
            out_channels: 0,
            temb_channels: Some(temb_dim),
            groups,
            eps: c.norm_eps,
            act: c.act_fn,
            output_scale_factor: c.resnet_out_scale_factor,
        };
        let attention = |i: usize, only_cross: bool| Transformer2DOptions {
            in_channels: 0,
            heads: blocks.num_heads[i],
            dim_head: 0,
            num_layers: blocks.transformer_layers[i],
            cross_attention_dim: Some(blocks.cross_attention_dim[i]),
            norm_num_groups: groups,
            use_linear_projection: c.use_linear_projection,
            only_cross_attention: only_cross,
            upcast_attention: c.upcast_attention,
            naming,
        };

        let down = p / "down_blocks";
        let mut down_blocks = Vec::new();
        let mut out_ch = ch0;
        for (i, kind) in c.down_block_types.iter().enumerate() {
            let in_ch = out_ch;
            out_ch = c.block_out_channels[i];
            let is_final = i == n - 1;
            let motion_heads = motion.as_ref().map(|(m, _)| (m.heads[i], m.layers[i]));
            down_blocks.push(DownBlock::new(
                &down / i as i64,
                BlockOptions {
                    in_channels: in_ch,
                    out_channels: out_ch,
                    prev_output_channels: 0,
                    num_layers: blocks.layers_per_block[i],
                    resnet,
                    attention: kind
                        .starts_with("CrossAttn")
                        .then(|| attention(i, blocks.only_cross_attention[i])),
                    motion: motion_heads.and_then(|(h, l)| motion_options(h, l)),
                    resample: (!is_final).then_some(c.downsample_padding),
                },
            ));
        }

        let last = n - 1;
        let mid_motion = motion
            .as_ref()
            .and_then(|(m, _)| m.mid_layers.map(|layers| (m.heads[last], layers)));
        let mid_block = MidBlock::new(
            p / "mid_block",
            c.block_out_channels[last],
            1,
            ResnetOptions {
                output_scale_factor: c.mid_block_scale_factor,
                ..resnet
            },
            // `UNetMidBlock2DCrossAttn` takes no `only_cross_attention`.
            attention(last, false),
            mid_motion.and_then(|(h, l)| motion_options(h, l)),
        );

        let up = p / "up_blocks";
        let mut up_blocks = Vec::new();
        let reversed: Vec<i64> = c.block_out_channels.iter().rev().copied().collect();
        let mut out_ch = reversed[0];
        let mut num_upsamplers = 0;
        for (i, kind) in c.up_block_types.iter().enumerate() {
            let j = n - 1 - i; // the matching down block
            let prev = out_ch;
            out_ch = reversed[i];
            let in_ch = reversed[(i + 1).min(n - 1)];
            let is_final = i == n - 1;
            if !is_final {
                num_upsamplers += 1;
            }
            let motion_heads = motion.as_ref().map(|(m, _)| (m.heads[j], m.layers[j]));
            up_blocks.push(UpBlock::new(
                &up / i as i64,
                BlockOptions {
                    in_channels: in_ch,
                    out_channels: out_ch,
                    prev_output_channels: prev,
                    num_layers: blocks.layers_per_block[j] + 1,
                    resnet,
                    attention: kind
                        .starts_with("CrossAttn")
                        .then(|| attention(j, blocks.only_cross_attention[j])),
                    motion: motion_heads.and_then(|(h, l)| motion_options(h, l)),
                    resample: (!is_final).then_some(0),
                },
            ));
        }

        let has_motion = motion.is_some();
        Ok(UNet {
            conv_in: conv2d(
                p / "conv_in",
                c.in_channels,
                ch0,
                c.conv_in_kernel,
                1,
                (c.conv_in_kernel - 1) / 2,
            ),
            time_embedding: TimestepEmbedding::new(p / "time_embedding", ch0, temb_dim, c.act_fn),
            class_embedding: match c.class_embedding()? {
                ClassEmbedding::None => ClassEmbed::None,
                ClassEmbedding::Table(n) => ClassEmbed::Table(embedding(p / "class_embedding", n, temb_dim)),
                ClassEmbedding::Timestep => ClassEmbed::Timestep(TimestepEmbedding::new(
                    p / "class_embedding",
                    ch0,
                    temb_dim,
                    c.act_fn,
                )),
            },
            down_blocks,
            mid_block,
            up_blocks,
            conv_norm_out: group_norm(p / "conv_norm_out", groups, ch0, c.norm_eps),
            conv_out: conv2d(
                p / "conv_out",
                ch0,
                c.out_channels,
                c.conv_out_kernel,
                1,
                (c.conv_out_kernel - 1) / 2,
            ),
            config: c.clone(),
            time_flip: if has_motion { true } else { c.flip_sin_to_cos },
            time_shift: if has_motion { 0.0 } else { c.freq_shift },
            act: if has_motion { Activation::Silu } else { c.act_fn },
            has_motion,
            num_upsamplers,
            device: p.device(),
            kind: p.kind(),
        })
    }

    /// Loads an image UNet from its config.json and safetensors file(s), strictly.
    pub fn load_2d(
        config: &UNet2DConditionConfig,
        files: &[impl AsRef<Path>],
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, DiffusionError> {
        let naming = AttentionNaming::from_files(files)?;
        let mut vs = var_store(device, dtype)?;
        let model = Self::new_2d(&vs.root(), config, naming)?;
        finish_loading(&mut vs, files)?;
        Ok(model)
    }

    /// Loads a video UNet from a base UNet (config + weights) and a MotionAdapter (config +
    /// weights), as users hold them: separate files, loaded together and strictly.
    pub fn load_motion(
        config: &UNet2DConditionConfig,
        unet_files: &[impl AsRef<Path>],
        adapter: &MotionAdapterConfig,
        adapter_files: &[impl AsRef<Path>],
        device: DeviceSpec,
        dtype: DType,
    ) -> Result<Self, DiffusionError> {
        let mut files: Vec<&Path> = unet_files.iter().map(AsRef::as_ref).collect();
        files.extend(adapter_files.iter().map(AsRef::as_ref));
        let naming = AttentionNaming::from_files(&files)?;
        let layout = MotionLayout::from_files(adapter, adapter_files)?;
        let mut vs = var_store(device, dtype)?;
        let model = Self::new_motion(&vs.root(), config, adapter, naming, layout)?;
        finish_loading(&mut vs, &files)?;
        Ok(model)
    }

    pub fn config(&self) -> &UNet2DConditionConfig {
        &self.config
    }

    pub fn has_motion(&self) -> bool {
        self.has_motion
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// The image UNet's noise prediction. `sample`: (N, C, H, W); `timestep`: a scalar or
    /// (N,) tensor; `context`: (N, S, cross_attention_dim) text states. A motion UNet runs
    /// each image as a one-frame video.
    pub fn forward(
        &self,
        sample: &Tensor,
        timestep: &Tensor,
        context: &Tensor,
    ) -> Result<Tensor, DiffusionError> {
        self.forward_with_class(sample, timestep, context, None)
    }

    /// [`UNet::forward`] with `class_labels`, a scalar or (N,) tensor, which a UNet with a
    /// class embedding (`num_class_embeds` or `class_embed_type`) requires: integer
    /// classes below `num_class_embeds` (the x4 upscaler's noise level), or timesteps.
    pub fn forward_with_class(
        &self,
        sample: &Tensor,
        timestep: &Tensor,
        context: &Tensor,
        class_labels: Option<&Tensor>,
    ) -> Result<Tensor, DiffusionError> {
        let size = sample.size();
        if size.len() != 4 {
            return Err(DiffusionError::input(
                "sample",
                format!("must be (N, C, H, W), got shape {size:?}"),
            ));
        }
        let n = size[0];
        self.check_context(context, n, n)?;
        let timestep = broadcast_timestep(timestep, n, self.device)?;
        let classes = self.check_class_labels(class_labels, n)?;
        Ok(tch::no_grad(|| {
            self.run(sample, &timestep, context, classes.as_ref(), 1)
        }))
    }

    /// The video UNet's noise prediction, as diffusers' `UNetMotionModel`: `sample`:
    /// (B, C, F, H, W) latents; `context`: (B*F, S, dim) text states repeated per frame
    /// (as `AnimateDiffPipeline` passes them) or (B, S, dim), repeated here. Returns
    /// (B, C, F, H, W).
    pub fn forward_video(
        &self,
        sample: &Tensor,
        timestep: &Tensor,
        context: &Tensor,
    ) -> Result<Tensor, DiffusionError> {
        if !self.has_motion {
            return Err(DiffusionError::input(
                "sample",
                "video latents need a UNet with motion modules (load_motion)",
            ));
        }
        let size = sample.size();
        let [b, c, f, h, w] = size[..] else {
            return Err(DiffusionError::input(
                "sample",
                format!("must be (B, C, F, H, W), got shape {size:?}"),
            ));
        };
        self.check_context(context, b, b * f)?;
        let context = if context.size()[0] == b && f > 1 {
            context.repeat_interleave_self_int(f, 0, None)
        } else {
            context.shallow_clone()
        };
        let timestep = broadcast_timestep(timestep, b, self.device)?.repeat_interleave_self_int(f, 0, None);
        let frames = sample.permute([0, 2, 1, 3, 4]).reshape([b * f, c, h, w]);
        self.check_class_labels(None, b * f)?;
        let out = tch::no_grad(|| self.run(&frames, &timestep, &context, None, f));
        let oc = out.size()[1];
        Ok(out.reshape([b, f, oc, h, w]).permute([0, 2, 1, 3, 4]))
    }

    /// The labels broadcast to (n,), when the model has a class embedding; errors when
    /// they are missing, not wanted, or out of the table.
    fn check_class_labels(&self, labels: Option<&Tensor>, n: i64) -> Result<Option<Tensor>, DiffusionError> {
        let err = |message: String| DiffusionError::input("class_labels", message);
        match (&self.class_embedding, labels) {
            (ClassEmbed::None, None) => Ok(None),
            (ClassEmbed::None, Some(_)) => Err(err("given, but the UNet has no class embedding".into())),
            (_, None) => Err(err(
                "required: the UNet has a class embedding (`num_class_embeds` or `class_embed_type`)".into(),
            )),
            (ClassEmbed::Table(table), Some(labels)) => {
                let rows = table.ws.size()[0];
                if labels.is_floating_point() {
                    return Err(err(format!(
                        "must be integers in 0..{rows}, got dtype {:?}",
                        labels.kind()
                    )));
                }
                let labels = broadcast_timestep(labels, n, self.device)
                    .map_err(|_| err(format!("must be a scalar or ({n},)")))?;
                let (lo, hi) = (labels.min().int64_value(&[]), labels.max().int64_value(&[]));
                if lo < 0 || hi >= rows {
                    return Err(err(format!("must be in 0..{rows}, got values in {lo}..={hi}")));
                }
                Ok(Some(labels.to_kind(Kind::Int64)))
            }
            (ClassEmbed::Timestep(_), Some(labels)) => Ok(Some(
                broadcast_timestep(labels, n, self.device)
                    .map_err(|_| err(format!("must be a scalar or ({n},)")))?,
            )),
        }
    }

    fn check_context(&self, context: &Tensor, b: i64, bf: i64) -> Result<(), DiffusionError> {
        let size = context.size();
        let dims = self.config.blocks()?.cross_attention_dim;
        let ok = size.len() == 3 && (size[0] == b || size[0] == bf) && dims.contains(&size[2]);
        if !ok {
            return Err(DiffusionError::input(
                "encoder_hidden_states",
                format!("must be ({b} or {bf}, seq, {dims:?}), got shape {size:?}"),
            ));
        }
        Ok(())
    }

    /// The UNet body on (N, C, H, W) frames; `num_frames` consecutive frames form a video.
    fn run(
        &self,
        sample: &Tensor,
        timestep: &Tensor,
        context: &Tensor,
        class_labels: Option<&Tensor>,
        num_frames: i64,
    ) -> Tensor {
        let n = sample.size()[0];
        let size = sample.size();
        let factor = 1i64 << self.num_upsamplers;
        let forward_upsample_size = size[2] % factor != 0 || size[3] % factor != 0;
        let sample = sample.to_device(self.device).to_kind(self.kind);
        let sample = if self.config.center_input_sample {
            sample * 2.0 - 1.0
        } else {
            sample
        };
        let timesteps = broadcast_timestep(timestep, n, self.device).expect("checked by callers");
        let t_emb = timestep_embedding(
            &timesteps,
            self.config.block_out_channels[0],
            self.time_flip,
            self.time_shift,
        )
        .to_kind(sample.kind());
        let temb = self.time_embedding.forward(&t_emb);
        let temb = match (&self.class_embedding, class_labels) {
            (ClassEmbed::Table(table), Some(labels)) => temb + table.forward(labels).to_kind(sample.kind()),
            (ClassEmbed::Timestep(embed), Some(labels)) => {
                let proj = timestep_embedding(
                    labels,
                    self.config.block_out_channels[0],
                    self.time_flip,
                    self.time_shift,
                );
                temb + embed.forward(&proj.to_kind(sample.kind()))
            }
            _ => temb,
        };
        let context = context.to_device(self.device).to_kind(self.kind);

        let mut h = self.conv_in.forward(&sample);
        let mut skips = vec![h.shallow_clone()];
        for block in &self.down_blocks {
            let (out, states) = block.forward(&h, &temb, &context, num_frames);
            h = out;
            skips.extend(states);
        }
        h = self.mid_block.forward(&h, &temb, &context, num_frames);
        let last = self.up_blocks.len() - 1;
        for (i, block) in self.up_blocks.iter().enumerate() {
            let take = block.num_layers();
            let block_skips = skips.split_off(skips.len() - take);
            let upsample_size = (i != last && forward_upsample_size).then(|| {
                let s = skips.last().expect("skips remain below the last block").size();
                [s[2], s[3]]
            });
            h = block.forward(&h, &block_skips, &temb, &context, upsample_size, num_frames);
        }
        let h = self.act.apply(&self.conv_norm_out.forward(&h));
        self.conv_out.forward(&h)
    }
}

/// A scalar or (1,) timestep broadcast to (n,); an (n,) one as is.
fn broadcast_timestep(timestep: &Tensor, n: i64, device: Device) -> Result<Tensor, DiffusionError> {
    let t = timestep.to_device(device);
    match t.size()[..] {
        [] | [1] => Ok(t.reshape([1]).expand([n], false)),
        [m] if m == n => Ok(t),
        ref s => Err(DiffusionError::input(
            "timestep",
            format!("must be a scalar or ({n},), got shape {s:?}"),
        )),
    }
}

/// An empty VarStore whose variables are created in `dtype` on `device` (never first in
/// f32: an SD 1.5 UNet in f16 then needs 1.7 GB, not 5).
pub(crate) fn var_store(device: DeviceSpec, dtype: DType) -> Result<nn::VarStore, DiffusionError> {
    let mut vs = nn::VarStore::new(device.to_device().map_err(DiffusionError::Device)?);
    vs.set_kind(dtype.kind());
    Ok(vs)
}

/// Loads strictly (converting to each variable's dtype) and freezes.
pub(crate) fn finish_loading(
    vs: &mut nn::VarStore,
    files: &[impl AsRef<Path>],
) -> Result<(), DiffusionError> {
    load_strict(vs, files)?;
    vs.freeze();
    Ok(())
}
