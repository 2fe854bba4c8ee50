# Bad checkpoints, configs, token ids and images on the model path: clear messages, exit 1, no crash.
add_test(NAME model_bad_input
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/bad_input.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-bad-input)
set_tests_properties(model_bad_input PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# Published checkpoint shapes (Qwen3-VL-4B, -2B, Qwen3-30B-A3B, Qwen3-VL-30B-A3B, Qwen1.5-MoE-A2.7B, Qwen2-57B-A14B)
# load with the right parameter counts.
add_test(NAME model_real_shapes
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/real_shapes.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-real-shapes)
set_tests_properties(model_real_shapes PROPERTIES LABELS ref TIMEOUT 600 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# InternVL's bad input in both layouts: a downsample_ratio that does not divide the patch grid, tiles that are not
# square or not divisible, no <IMG_CONTEXT> / <img> token, a language model it does not run, refused config values,
# missing or misshapen tensors, tiles given to a tower that takes patch rows.
add_test(NAME model_internvl_bad_input
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_bad_input.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-internvl-bad-input)
set_tests_properties(model_internvl_bad_input PROPERTIES LABELS ref TIMEOUT 300
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# InternVL chat in both layouts (tiny checkpoints with a ChatML template): an image the processor tiles, the
# template's one <IMG_CONTEXT> per image expanded into <img> + context tokens + </img>; `mitten run` gives the
# PyTorch reference's greedy answer on the same prompt ids, `chat` the same over two turns, `serve` the same.
add_test(NAME model_internvl_chat
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_chat.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-internvl-chat)
set_tests_properties(model_internvl_chat PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# InternLM2ForCausalLM trained through its packed wqkv: LoRA (PEFT names, merge = OUT/model) and full fine-tuning.
add_test(NAME model_internlm2_train
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internlm2_train.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-internlm2-train)
set_tests_properties(model_internlm2_train PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# InternVL videos end to end (issue 13): mitten run --video (alone and after an image), serve's video_url and
# --max-frames on tiny checkpoints of both layouts, against internvl_ref.py's greedy answer on the prompt each
# reference builds (the model card's "FrameN: <image>\n" prefix; InternVLProcessor's joined frames); SKIP without ffmpeg.
add_test(NAME model_internvl_video
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_video.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-internvl-video)
set_tests_properties(model_internvl_video PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
