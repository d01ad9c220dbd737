//! The VAE's blocks: `DownEncoderBlock2D`, `UpDecoderBlock2D` and `UNetMidBlock2D`
//! (resnets without a time embedding; the mid block's attention is the deprecated
//! attention block, with GroupNorm, a residual and one head of all channels).

use tch::{Tensor, nn};

use crate::diffusion::{
    Attention, AttentionNaming, AttentionOptions,
    resnet::{Downsample2D, ResnetBlock2D, ResnetOptions, Upsample2D},
};

fn resnets(
    p: &nn::Path,
    n: i64,
    in_channels: i64,
    out_channels: i64,
    template: ResnetOptions,
) -> Vec<ResnetBlock2D> {
    let rp = p / "resnets";
    (0..n)
        .map(|i| {
            ResnetBlock2D::new(
                &rp / i,
                ResnetOptions {
                    in_channels: if i == 0 { in_channels } else { out_channels },
                    out_channels,
                    ..template
                },
            )
        })
        .collect()
}

/// `DownEncoderBlock2D`: resnets, then a stride-2 convolution (padded right and bottom).
#[derive(Debug)]
pub struct DownEncoderBlock {
    resnets: Vec<ResnetBlock2D>,
    downsampler: Option<Downsample2D>,
}

impl DownEncoderBlock {
    pub fn new(p: nn::Path, n: i64, cin: i64, cout: i64, downsample: bool, template: ResnetOptions) -> Self {
        DownEncoderBlock {
            resnets: resnets(&p, n, cin, cout, template),
            downsampler: downsample.then(|| Downsample2D::new(&p / "downsamplers" / 0, cout, cout, 0)),
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.shallow_clone();
        for r in &self.resnets {
            h = r.forward(&h, None);
        }
        match &self.downsampler {
            Some(d) => d.forward(&h),
            None => h,
        }
    }
}

/// `UpDecoderBlock2D`: resnets, then nearest x2 and a convolution.
#[derive(Debug)]
pub struct UpDecoderBlock {
    resnets: Vec<ResnetBlock2D>,
    upsampler: Option<Upsample2D>,
}

impl UpDecoderBlock {
    pub fn new(p: nn::Path, n: i64, cin: i64, cout: i64, upsample: bool, template: ResnetOptions) -> Self {
        UpDecoderBlock {
            resnets: resnets(&p, n, cin, cout, template),
            upsampler: upsample.then(|| Upsample2D::new(&p / "upsamplers" / 0, cout, cout)),
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = xs.shallow_clone();
        for r in &self.resnets {
            h = r.forward(&h, None);
        }
        match &self.upsampler {
            Some(u) => u.forward(&h, None),
            None => h,
        }
    }
}

/// `UNetMidBlock2D` without a time embedding: resnet, attention (optional), resnet.
#[derive(Debug)]
pub struct MidBlock2D {
    resnets: Vec<ResnetBlock2D>,
    attention: Option<Attention>,
}

impl MidBlock2D {
    pub fn new(
        p: nn::Path,
        channels: i64,
        add_attention: bool,
        template: ResnetOptions,
        naming: AttentionNaming,
    ) -> Self {
        let template = ResnetOptions {
            in_channels: channels,
            out_channels: channels,
            ..template
        };
        let rp = &p / "resnets";
        let attention = add_attention.then(|| {
            let mut o = AttentionOptions::new(channels, 1, channels);
            o.bias = true;
            o.upcast = true;
            o.group_norm = Some((template.groups, template.eps));
            o.residual_connection = true;
            o.naming = naming;
            Attention::new(&p / "attentions" / 0, &o)
        });
        MidBlock2D {
            resnets: (0..2).map(|i| ResnetBlock2D::new(&rp / i, template)).collect(),
            attention,
        }
    }

    pub fn forward(&self, xs: &Tensor) -> Tensor {
        let mut h = self.resnets[0].forward(xs, None);
        if let Some(a) = &self.attention {
            h = a.forward(&h, None);
        }
        self.resnets[1].forward(&h, None)
    }
}
