# The chat page of `mitten serve` (src/serve/web/).
#   test_web_assets  (unit) every page file is embedded byte for byte with its type; it reads the files to compare
#   serve_web_page   the page in chromium (playwright-core) against tests/serve/mock_server.mjs: attach, ask, stream,
#                    stop, tokens/s, Markdown, errors, a 360 px width; screenshots serve_web_page{,-narrow}.png here.
#                    SKIP (77) without chromium or node_modules/playwright-core. The same script runs against a real
#                    server: node tests/serve/web_page.mjs http://127.0.0.1:8080/ shot.png
if(TARGET test_web_assets)
  target_compile_definitions(test_web_assets PRIVATE MT_WEB_DIR="${CMAKE_SOURCE_DIR}/src/serve/web")
  set_tests_properties(test_web_assets PROPERTIES LABELS "unit;serve")
endif()

find_program(MT_NODE NAMES node nodejs)
if(MT_NODE)
  add_test(NAME serve_web_page
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/web_page.mjs mock ${CMAKE_CURRENT_BINARY_DIR}/serve_web_page.png)
  set_tests_properties(serve_web_page PROPERTIES LABELS serve TIMEOUT 120 SKIP_RETURN_CODE 77)
else()
  message(STATUS "serve_web_page not registered: no node")
endif()

# mitten serve through the official openai npm client on the shipped tiny model (answers checked against mitten run).
if(MT_NODE)
  add_test(NAME serve_openai_client
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/openai_client.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR})
  set_tests_properties(serve_openai_client PROPERTIES LABELS serve TIMEOUT 300)
endif()
