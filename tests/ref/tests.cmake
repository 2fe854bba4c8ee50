# Reference implementations in PyTorch (see tests/ref/README.md). The self-check recomputes each piece of the
# Qwen2-VL / Qwen2.5-VL reference a second way (window order, segmented attention, KV-cache decoding, ...).
add_test(NAME ref_qwen2_vl_selfcheck
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/qwen2_vl_ref.py self-check)
set_tests_properties(ref_qwen2_vl_selfcheck PROPERTIES LABELS ref TIMEOUT 120
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# The same for the Qwen3 family reference (Qwen2, Qwen3, Qwen3-MoE, Qwen2-MoE, Qwen3-VL, Qwen3-VL-MoE): MoE routing,
# the shared expert, fused experts, interleaved M-RoPE, position-embedding interpolation, DeepStack, KV cache,
# sparse checkpoints.
add_test(NAME ref_qwen3_selfcheck
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/qwen3_ref.py self-check)
set_tests_properties(ref_qwen3_selfcheck PROPERTIES LABELS ref TIMEOUT 120
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# The same for the InternVL reference: pixel shuffle (v1, v2) in closed form, bicubic identity at the trained size,
# the layout converter (round trip, equal logits in both layouts), the 6B's whole-width q/k norm.
add_test(NAME ref_internvl_selfcheck
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_ref.py self-check)
set_tests_properties(ref_internvl_selfcheck PROPERTIES LABELS ref TIMEOUT 120
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# Parity of mitten's Qwen2-VL family with this reference: every named intermediate, logits, positions, greedy tokens.
foreach(variant qwen2_5_vl qwen2_vl qwen2_5_vl_video qwen2_vl_video bf16 qwen2 qwen3 qwen3_moe qwen3_vl qwen3_vl_4x qwen3_vl_video qwen3_vl_moe qwen3_swa qwen2_swa
                qwen3_moe_swa qwen2_moe internvl_hf internvl_original internvl_hf_from_original
                internvl_original_from_hf internvl_6b_qwen3 internvl_internlm2 internvl_hf_internlm2
                internlm2_text llama llama_4x internvl_llama internvl_hf_video internvl_original_video
                internvl_internlm2_video)
  add_test(NAME ref_parity_${variant}
           COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/parity.py --mitten $<TARGET_FILE:mitten_cli>
                   --work ${CMAKE_BINARY_DIR}/ref-work/${variant} --variant ${variant})
  set_tests_properties(ref_parity_${variant} PROPERTIES LABELS ref TIMEOUT 600
                       ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endforeach()

# The work mitten bench counts for a tiled vision tower (InternViT: class token, tiles, pixel shuffle, mlp1).
add_test(NAME ref_bench_work_internvl
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/bench_work_check.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/ref-work/bench_work_internvl)
set_tests_properties(ref_bench_work_internvl PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
