# KV-cache reuse across chat turns gives exactly what a fresh session gives (tiny random checkpoint from tests/ref).
add_executable(engine_prefix_reuse ${CMAKE_CURRENT_LIST_DIR}/prefix_reuse.c)
target_include_directories(engine_prefix_reuse PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(engine_prefix_reuse PRIVATE mitten)
set(MT_ENGINE_WORK ${CMAKE_BINARY_DIR}/engine-work)
add_test(NAME engine_prefix_reuse
         COMMAND sh -c "${MT_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/qwen2_vl_ref.py make-checkpoint --variant qwen2_5_vl --out ${MT_ENGINE_WORK}/model --seed 11 >/dev/null && ${MT_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/qwen2_vl_ref.py make-inputs --case one_image --model ${MT_ENGINE_WORK}/model --out ${MT_ENGINE_WORK}/in >/dev/null && $<TARGET_FILE:engine_prefix_reuse> ${MT_ENGINE_WORK}/model ${MT_ENGINE_WORK}/in")
set_tests_properties(engine_prefix_reuse PROPERTIES LABELS ref TIMEOUT 120 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# The same with a Qwen3-VL video: its rows are split by the timestamp text between frames.
add_test(NAME engine_prefix_reuse_qwen3_video
         COMMAND sh -c "${MT_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/qwen3_ref.py make-checkpoint --variant qwen3_vl --byte-tokenizer --out ${MT_ENGINE_WORK}/q3v-model --seed 11 >/dev/null && ${MT_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/qwen3_ref.py make-inputs --case video --model ${MT_ENGINE_WORK}/q3v-model --out ${MT_ENGINE_WORK}/q3v-in >/dev/null && $<TARGET_FILE:engine_prefix_reuse> ${MT_ENGINE_WORK}/q3v-model ${MT_ENGINE_WORK}/q3v-in")
set_tests_properties(engine_prefix_reuse_qwen3_video PROPERTIES LABELS ref TIMEOUT 120
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# A batch of several sequences of different lengths gives each sequence's logits alone (prefill and decode).
add_executable(engine_batch ${CMAKE_CURRENT_LIST_DIR}/batch.c)
target_include_directories(engine_batch PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(engine_batch PRIVATE mitten)
add_test(NAME engine_batch
         COMMAND sh -c "${MT_PYTHON} ${CMAKE_SOURCE_DIR}/tests/ref/qwen2_vl_ref.py make-checkpoint --variant qwen2_5_vl --out ${MT_ENGINE_WORK}/batch-model --seed 12 >/dev/null && $<TARGET_FILE:engine_batch> ${MT_ENGINE_WORK}/batch-model")
set_tests_properties(engine_batch PROPERTIES LABELS ref TIMEOUT 120 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# The sampling distribution (repetition penalty, temperature, top-k, top-p, min-p) as transformers' generate() builds it.
add_executable(sampler_check ${CMAKE_CURRENT_LIST_DIR}/sampler_check.c)
target_include_directories(sampler_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(sampler_check PRIVATE mitten)
add_test(NAME engine_sampler_ref
         COMMAND sh -c "${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/sampler_ref.py ${MT_ENGINE_WORK}/sampler >/dev/null && $<TARGET_FILE:sampler_check> ${MT_ENGINE_WORK}/sampler")
set_tests_properties(engine_sampler_ref PROPERTIES LABELS ref TIMEOUT 120 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# Continuous batching: queued, chunked, batched greedy requests give exactly what each gives alone; prefix reuse,
# cancellation, the queue bound and the context limit (the shipped tiny model and the example picture).
add_executable(engine_sched ${CMAKE_CURRENT_LIST_DIR}/sched.c)
target_include_directories(engine_sched PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(engine_sched PRIVATE mitten)
add_test(NAME engine_sched COMMAND engine_sched ${CMAKE_SOURCE_DIR}/models/mitten-tiny ${CMAKE_SOURCE_DIR}/docs/example.png)
set_tests_properties(engine_sched PROPERTIES LABELS engine TIMEOUT 120)

# Videos through the public API (mt_session_chat) on the shipped tiny model: by path and by bytes alike (no temporary
# copy left), a still clip answered as its picture, an image with a video, bad kinds and settings refused by name.
find_program(MT_FFMPEG NAMES ffmpeg)
add_executable(engine_chat_video ${CMAKE_CURRENT_LIST_DIR}/chat_video.c)
target_include_directories(engine_chat_video PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(engine_chat_video PRIVATE mitten)
if(MT_FFMPEG)
  set(MT_CHAT_VIDEO_WORK ${CMAKE_BINARY_DIR}/engine-work/chat-video)
  add_test(NAME engine_chat_video
           COMMAND sh -c "rm -rf ${MT_CHAT_VIDEO_WORK} && mkdir -p ${MT_CHAT_VIDEO_WORK}/tmp && ${MT_FFMPEG} -loglevel error -y -loop 1 -i ${CMAKE_SOURCE_DIR}/docs/tiny_example.png -t 2 -r 10 -pix_fmt yuv444p -c:v libx264 ${MT_CHAT_VIDEO_WORK}/still.mp4 && TMPDIR=${MT_CHAT_VIDEO_WORK}/tmp $<TARGET_FILE:engine_chat_video> ${CMAKE_SOURCE_DIR}/models/mitten-tiny ${MT_CHAT_VIDEO_WORK}/still.mp4 ${CMAKE_SOURCE_DIR}/docs/tiny_example.png ${MT_CHAT_VIDEO_WORK}/tmp")
  set_tests_properties(engine_chat_video PROPERTIES LABELS engine TIMEOUT 120)
else()
  message(STATUS "engine_chat_video not registered: no ffmpeg command")
endif()
