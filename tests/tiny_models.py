"""Tiny recognition models built in the test itself: random weights, saved the way users'
real models are, with the output layer set so that every line reads ``letter`` (a known
answer, so the whole load-batch-decode path can be checked)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch

from ocrkie.engines.torch_device import import_torchvision

CHARSET = "ABCDEFGHIJ"


def tiny_trocr(folder: Path, letter: str = "A") -> Path:
    """A VisionEncoderDecoder (ViT + TrOCR decoder) folder, as ``save_pretrained`` writes."""
    import_torchvision()  # transformers' image processors import it
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        TrOCRConfig,
        VisionEncoderDecoderConfig,
        VisionEncoderDecoderModel,
        ViTConfig,
        ViTImageProcessor,
    )

    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", *CHARSET])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    encoder = ViTConfig(
        image_size=32, patch_size=8, hidden_size=16, num_hidden_layers=1,
        num_attention_heads=2, intermediate_size=32,
    )  # fmt: skip
    decoder = TrOCRConfig(
        vocab_size=len(vocab), d_model=16, decoder_layers=1, decoder_attention_heads=2,
        decoder_ffn_dim=32, max_position_embeddings=64,
    )  # fmt: skip
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(encoder, decoder)
    config.decoder_start_token_id, config.pad_token_id, config.eos_token_id = 1, 0, 2
    torch.manual_seed(0)
    model = VisionEncoderDecoderModel(config=config)
    model.generation_config.update(decoder_start_token_id=1, pad_token_id=0, eos_token_id=2)
    with torch.no_grad():
        last = model.decoder.model.decoder.layers[-1].final_layer_norm
        last.weight.zero_()
        last.bias.fill_(1.0)  # the decoder's output: all ones, whatever it reads
        model.decoder.output_projection.weight.zero_()
        model.decoder.output_projection.weight[vocab[letter]] = 1.0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def tiny_kraken(path: Path, letter: str = "A") -> Path:
    """A kraken VGSL recognition model file (CoreML, as ketos writes it)."""
    import_torchvision()
    from kraken.lib.vgsl import TorchVGSLModel
    from kraken.models import write_models

    torch.manual_seed(0)
    spec = "[1,32,0,1 Cr3,3,8 Mp2,2 S1(1x0)1,3 Lbx8 O1c11]"
    net = TorchVGSLModel(vgsl=spec, codec=" " + CHARSET)
    net.model_type = "recognition"
    with torch.no_grad():
        linear = net.nn[-1].lin
        linear.weight.zero_()
        linear.bias.fill_(-10.0)
        linear.bias[net.codec.c2l[letter][0]] = 10.0  # CTC: every column, then collapsed
    with warnings.catch_warnings():  # kraken's CoreML writer calls its own deprecated save
        warnings.simplefilter("ignore", DeprecationWarning)
        return Path(write_models([net], path))
