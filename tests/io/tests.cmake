# io: NumPy reads the .npy files mitten writes and writes the ones it reads; safetensors files written by hand in
# Python (struct + json, as the format is specified) are read by mitten, and mitten's are checked field by field.
add_executable(io_ref ${CMAKE_CURRENT_LIST_DIR}/io_ref.c)
target_include_directories(io_ref PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(io_ref PRIVATE mitten)
add_test(NAME io_ref COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/io_ref.py $<TARGET_FILE:io_ref>)
set_tests_properties(io_ref PROPERTIES LABELS ref TIMEOUT 120)

# GGUF against llama.cpp's own reader and writer: libggml-base.so from the npm package @node-llama-cpp/linux-x64
# (package.json; npm install at the repository root). A missing library fails the test.
add_executable(gguf_ref ${CMAKE_CURRENT_LIST_DIR}/gguf_ref.c)
target_include_directories(gguf_ref PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(gguf_ref PRIVATE mitten ${CMAKE_DL_LIBS})
add_test(NAME gguf_ref COMMAND gguf_ref
         ${CMAKE_SOURCE_DIR}/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so
         ${CMAKE_CURRENT_BINARY_DIR})
set_tests_properties(gguf_ref PROPERTIES LABELS ref TIMEOUT 120)
