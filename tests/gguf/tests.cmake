# GGUF files mitten writes for llama.cpp (src/models/gguf_export.h), checked by llama.cpp itself:
#   gguf_llama_cpp     node-llama-cpp's prebuilt llama.cpp loads `mitten quantize`'s files of every type: the same
#                      tokens, logits within each type's bound, the same greedy answer (llama_cpp.mjs)
#   gguf_files_ggml    ggml's GGUF reader (ctypes on libggml-base) on the model and mmproj files: keys, types, tensor
#                      names, ne, ggml types as llama.cpp's quantizer picks them, bytes as ggml quantizes (mmproj_check.py)
# Both fail when npm install has not run (scripts/setup.sh runs it).
find_program(MT_NODE NAMES node nodejs)
if(MT_NODE)
  add_test(NAME gguf_llama_cpp
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/llama_cpp.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR}
                   ${CMAKE_BINARY_DIR}/gguf-llama-cpp)
  set_tests_properties(gguf_llama_cpp PROPERTIES LABELS ref TIMEOUT 300)
  # gguf_llama_cpp_text  the llama and internlm2 archs (q/k permuted for llama.cpp's rope, InternLM2's wqkv split) on
  #                      tiny random checkpoints with Llama 3's tokenizer: llama.cpp's tokens, logits and greedy answer
  #                      against mitten's, mitten reading the files back (llama_cpp_text.mjs)
  add_test(NAME gguf_llama_cpp_text
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/llama_cpp_text.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR}
                   ${CMAKE_BINARY_DIR}/gguf-llama-cpp-text ${MT_PYTHON})
  set_tests_properties(gguf_llama_cpp_text PROPERTIES LABELS ref TIMEOUT 600 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
endif()
add_test(NAME gguf_files_ggml
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/mmproj_check.py --mitten $<TARGET_FILE:mitten_cli>
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/gguf-files-ggml)
set_tests_properties(gguf_files_ggml PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_read_back     mitten runs its own files: the folder's answer and logits from f32 / bf16 / q8_0 / q4_K files
#                    with their mmproj, a VL file as text only, a video, info, refusals, no metadata folder left
#                    (read_back.py)
add_test(NAME gguf_read_back
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/read_back.py --mitten $<TARGET_FILE:mitten_cli>
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/gguf-read-back)
set_tests_properties(gguf_read_back PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_llama_quantize  llama.cpp's own quantizer (llama_model_quantize in the prebuilt libllama) on mitten's f32 file
#                      gives the tensors, types and bytes mitten's q8_0 / q4_0 files hold; mitten runs its files
add_test(NAME gguf_llama_quantize
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/llama_quantize.py --mitten $<TARGET_FILE:mitten_cli>
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/gguf-llama-quantize)
set_tests_properties(gguf_llama_quantize PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_llama_mtmd    llama.cpp's own multimodal CLI (llama-mtmd-cli, built here by scripts/build_llama_cpp.sh) runs
#                    mitten's model + mmproj files of every type and answers questions about pictures as mitten
#                    does (llama_mtmd.py); fails when llama.cpp was not built
add_test(NAME gguf_llama_mtmd
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/llama_mtmd.py --mitten $<TARGET_FILE:mitten_cli>
                 --llama-bin ${CMAKE_SOURCE_DIR}/build-llama.cpp/bin --source ${CMAKE_SOURCE_DIR}
                 --work ${CMAKE_BINARY_DIR}/gguf-llama-mtmd)
set_tests_properties(gguf_llama_mtmd PROPERTIES LABELS "ref;release_only" TIMEOUT 600 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_bf16_dot      bf16 dot products on bf16, f16, q8_0 and q4_K models: the logits move by less than the stated bound
#                    and the greedy answer stays (on CPUs without AVX-512-BF16: MT_BF16_DOT=1 changes nothing) (bf16_dot.py)
add_test(NAME gguf_bf16_dot
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/bf16_dot.py --mitten $<TARGET_FILE:mitten_cli>
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/gguf-bf16-dot)
set_tests_properties(gguf_bf16_dot PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_internvl       InternVL's files (both layouts): the LLM's arch with language_model.* renamed, the internvl
#                     projector file's keys, types, names, ne and bytes through ggml's reader (internvl_check.py)
add_test(NAME gguf_internvl
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/internvl_check.py --mitten $<TARGET_FILE:mitten_cli>
                 --llama-bin ${CMAKE_SOURCE_DIR}/build-llama.cpp/bin
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/gguf-internvl)
set_tests_properties(gguf_internvl PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_qwen3vl        Qwen3-VL's files: the qwen3vl arch (IMROPE sections, n_deepstack_layers) and the qwen3vl_merger
#                     projector with its DeepStack mergers, through ggml's reader (qwen3vl_check.py)
add_test(NAME gguf_qwen3vl
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/qwen3vl_check.py --mitten $<TARGET_FILE:mitten_cli>
                 --llama-bin ${CMAKE_SOURCE_DIR}/build-llama.cpp/bin
                 --source ${CMAKE_SOURCE_DIR} --work ${CMAKE_BINARY_DIR}/gguf-qwen3vl)
set_tests_properties(gguf_qwen3vl PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_llama_perplexity  mitten perplexity and llama.cpp's llama-perplexity on the same files and text agree: f32
#                        within 0.1%, q8_0 / q4_K within 3% (llama_perplexity.py)
add_test(NAME gguf_llama_perplexity
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/llama_perplexity.py --mitten $<TARGET_FILE:mitten_cli>
                 --llama-bin ${CMAKE_SOURCE_DIR}/build-llama.cpp/bin --source ${CMAKE_SOURCE_DIR}
                 --work ${CMAKE_BINARY_DIR}/gguf-llama-perplexity)
set_tests_properties(gguf_llama_perplexity PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# gguf_llama_spm      SentencePiece ("llama") vocabularies: a tokenizer.model trained with python3-sentencepiece and
#                     Llama 2's tokenizer.json, written to GGUF: gguf-py reads the keys, and llama.cpp's
#                     llama-tokenize, mitten on the file and on the folder give SentencePiece's / the npm package's
#                     ids (llama_spm.py); SKIP without python3-sentencepiece, llama-tokenize or the npm package
add_test(NAME gguf_llama_spm
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/llama_spm.py $<TARGET_FILE:mitten_cli>
                 ${CMAKE_SOURCE_DIR}/build-llama.cpp/bin/llama-tokenize ${CMAKE_SOURCE_DIR}
                 ${CMAKE_BINARY_DIR}/gguf-llama-spm)
set_tests_properties(gguf_llama_spm PROPERTIES LABELS "ref;release_only" TIMEOUT 600 SKIP_RETURN_CODE 77
                     ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
