# Image decode, PIL-exact resize and Qwen2-VL / Qwen3-VL preprocessing compared with PIL and a numpy
# re-implementation of transformers' Qwen2VLImageProcessor (and, for the config keys, Qwen2VLImageProcessorFast).
# ref_media.py writes its images and expectations into the build tree.
add_executable(media_ref ${CMAKE_CURRENT_LIST_DIR}/media_ref.c)
target_include_directories(media_ref PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(media_ref PRIVATE mitten)
add_test(NAME media_ref_pil
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/ref_media.py $<TARGET_FILE:media_ref>
                 ${CMAKE_CURRENT_BINARY_DIR}/media_ref_work)
set_tests_properties(media_ref_pil PROPERTIES LABELS ref TIMEOUT 300) # over 95 s under ASan on a Zen 5 VM

# InternVL's tiling (original dynamic_preprocess and transformers' GotOcr2ImageProcessor) compared with a PIL + torch
# re-implementation of both, through the processor part loaded from folders the script writes.
add_executable(internvl_ref ${CMAKE_CURRENT_LIST_DIR}/internvl_ref.c)
target_include_directories(internvl_ref PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(internvl_ref PRIVATE mitten)
add_test(NAME media_internvl_pil
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_pre_ref.py $<TARGET_FILE:internvl_ref>
                 ${CMAKE_CURRENT_BINARY_DIR}/internvl_ref_work)
set_tests_properties(media_internvl_pil PROPERTIES LABELS ref TIMEOUT 300)

# torchvision's bicubic antialiased resize (what qwen-vl-utils does to video frames) compared with Debian's
# torchvision 0.14 on random, edge and gradient images across up/down scales and 1-pixel sides.
add_executable(resize_torch_ref ${CMAKE_CURRENT_LIST_DIR}/resize_torch_ref.c)
target_include_directories(resize_torch_ref PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(resize_torch_ref PRIVATE mitten)
add_test(NAME media_resize_torch
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/resize_torch_ref.py $<TARGET_FILE:resize_torch_ref>
                 ${CMAKE_CURRENT_BINARY_DIR}/resize_torch_work)
set_tests_properties(media_resize_torch PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77)

# Video: decoding by seeking (FFmpeg) against PyAV decoding every frame, and qwen-vl-utils' sampling and resize plus
# the Qwen2-VL processor against a torch / torchvision re-implementation; bad files must fail cleanly. video_ref.py
# makes its videos with the ffmpeg command.
add_executable(video_ref ${CMAKE_CURRENT_LIST_DIR}/video_ref.c)
target_include_directories(video_ref PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(video_ref PRIVATE mitten)
add_test(NAME media_video_ref
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/video_ref.py $<TARGET_FILE:video_ref> $<TARGET_FILE:mitten_cli>
                 ${CMAKE_CURRENT_BINARY_DIR}/video_ref_work)
set_tests_properties(media_video_ref PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)

# InternVL's video frames (issue 13): `mitten preprocess --video` on tiny folders of both layouts against the model
# card's load_video and transformers' InternVLVideoProcessor re-implemented with PyAV, PIL and torchvision: frame
# indices equal, pixels within one uint8 level; refusals name what is wrong (ffmpeg makes the clips).
add_test(NAME media_internvl_video
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_video_ref.py $<TARGET_FILE:mitten_cli>
                 ${CMAKE_CURRENT_BINARY_DIR}/internvl_video_work)
set_tests_properties(media_internvl_video PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
