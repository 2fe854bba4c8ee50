# nn/rope against a torch re-implementation of transformers' rope variants (tests/nn/rope_ref.py): each case is a
# config.json fragment read through mt_cfg_rope, then inv_freq, attention factor and cos/sin tables are compared;
# bad fragments must be refused naming the field.
add_executable(rope_check ${CMAKE_CURRENT_LIST_DIR}/rope_check.c)
target_include_directories(rope_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(rope_check PRIVATE mitten)
add_test(NAME rope_ref
         COMMAND sh -c "${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/rope_ref.py ${CMAKE_CURRENT_BINARY_DIR}/rope_ref && $<TARGET_FILE:rope_check> ${CMAKE_CURRENT_BINARY_DIR}/rope_ref")
set_tests_properties(rope_ref PROPERTIES LABELS ref TIMEOUT 120 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
