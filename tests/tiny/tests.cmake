# The shipped small model, models/mitten-tiny (made by scripts/make_tiny.py; docs/TINY.md). Retraining is not a test:
# it takes minutes; docs/TINY.md says how to reproduce the folder.
#   tiny_heldout    held-out questions (colour-shape pairs never trained on) answered at the accuracy TINY.md states
#   tiny_default    mitten info reads the folder; mitten run without -m uses it (the README's first command)
#   tiny_tokenizer  its tokenizer.json gives the same ids and decode in @lenml/tokenizers (npm) as in mitten
add_test(NAME tiny_heldout
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/heldout_check.py $<TARGET_FILE:mitten_cli>
                 ${CMAKE_SOURCE_DIR}/models/mitten-tiny ${CMAKE_BINARY_DIR}/tiny-heldout)
add_test(NAME tiny_default
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/default_model.sh $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR})
add_test(NAME tiny_tokenizer
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/tok_check.py $<TARGET_FILE:mitten_cli>
                 ${CMAKE_SOURCE_DIR}/models/mitten-tiny ${CMAKE_BINARY_DIR}/tiny-tokenizer)
set_tests_properties(tiny_heldout tiny_default tiny_tokenizer PROPERTIES LABELS ref TIMEOUT 120 SKIP_RETURN_CODE 77)
