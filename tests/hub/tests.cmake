# -m ORG/NAME through a Hugging Face cache laid out by hand as huggingface_hub lays it out (needs python3-torch for
# the tiny checkpoints): info, logits, preprocess, --revision, the cache folder's variables, and the failures.
add_test(NAME hub_cache_cli
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/hub_cache_test.py $<TARGET_FILE:mitten_cli>
                 ${CMAKE_BINARY_DIR}/hub-work ${CMAKE_SOURCE_DIR})
set_tests_properties(hub_cache_cli PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
