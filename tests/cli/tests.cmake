# The mitten CLI end to end on the demo model (needs python3-torch for the checkpoint and the npm tokenizer; each
# script makes its own copy in its work folder, so they run in parallel). SKIP (77) without node_modules.
#   cli_test.sh   run, chat, info, preprocess, --help and usage errors, with their exit codes
#   chat_test.sh  chat as a user types it: commands, /image paths, long lines, a conversation over the context
#   gen_test.sh   generation_config.json defaults, seeds, --ctx and --max-pixels
#   io_test.sh    output folders, failed writes, stdout and stderr, stdin, id formats
foreach(script cli_test chat_test gen_test io_test)
  if(script STREQUAL "cli_test")
    set(name cli_end_to_end)
    set(dir cli-work)
  else()
    string(REPLACE "_test" "" area ${script})
    set(name cli_${area})
    set(dir cli-work-${area})
  endif()
  add_test(NAME ${name}
           COMMAND ${CMAKE_CURRENT_LIST_DIR}/${script}.sh $<TARGET_FILE:mitten_cli> ${CMAKE_BINARY_DIR}/${dir}
                   ${CMAKE_SOURCE_DIR})
  set_tests_properties(${name} PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77)
endforeach()
# cli_perplexity  mitten perplexity on models/mitten-tiny against the PyTorch reference forward (NLL in float64,
#                 within 1e-6 relative) over llama-perplexity's windows and overlapping ones; --base on itself and on
#                 its f32 GGUF file gives KL 0; bad inputs named (perplexity_check.py)
add_test(NAME cli_perplexity
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/perplexity_check.py --mitten $<TARGET_FILE:mitten_cli>
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/cli-work-perplexity)
set_tests_properties(cli_perplexity PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# cli_video  mitten run --video on models/mitten-tiny (and the demo checkpoint): the greedy answer of mitten logits
#            on mitten preprocess --video's arrays, an image with a video, a folder of frames, a still clip answered
#            as its picture, refusals (video_check.py; SKIP without the ffmpeg command)
add_test(NAME cli_video
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/video_check.py --mitten $<TARGET_FILE:mitten_cli>
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/cli-work-video)
set_tests_properties(cli_video PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
