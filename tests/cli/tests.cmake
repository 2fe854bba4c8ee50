# The mitten CLI end to end on the demo model (needs python3-torch for the checkpoint and the npm tokenizer).
add_test(NAME cli_end_to_end
         COMMAND ${CMAKE_CURRENT_LIST_DIR}/cli_test.sh $<TARGET_FILE:mitten_cli> ${CMAKE_BINARY_DIR}/cli-work
                 ${CMAKE_SOURCE_DIR})
set_tests_properties(cli_end_to_end PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77)
