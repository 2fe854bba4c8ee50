# The chat page of `mitten serve` (src/serve/web/).
#   test_web_assets  (unit) every page file is embedded byte for byte with its type; it reads the files to compare
#   serve_web_page   the page in chromium (playwright-core) against tests/serve/mock_server.mjs: attach, ask, stream,
#                    stop, tokens/s, Markdown, errors, a 360 px width; screenshots serve_web_page{,-narrow}.png here.
#                    It fails without chromium or node_modules/playwright-core (scripts/setup.sh installs both).
#   serve_web_page_real  the same page against `mitten serve` on the shipped model (screenshot serve_web_page_real.png)
if(TARGET test_web_assets)
  target_compile_definitions(test_web_assets PRIVATE MT_WEB_DIR="${CMAKE_SOURCE_DIR}/src/serve/web")
  set_tests_properties(test_web_assets PROPERTIES LABELS "unit;serve")
endif()

find_program(MT_NODE NAMES node nodejs)
if(MT_NODE)
  add_test(NAME serve_web_page
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/web_page.mjs mock ${CMAKE_CURRENT_BINARY_DIR}/serve_web_page.png)
  set_tests_properties(serve_web_page PROPERTIES LABELS serve TIMEOUT 120)
  add_test(NAME serve_web_page_real
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/web_page.mjs mitten=$<TARGET_FILE:mitten_cli>
                   ${CMAKE_CURRENT_BINARY_DIR}/serve_web_page_real.png)
  set_tests_properties(serve_web_page_real PROPERTIES LABELS serve TIMEOUT 120)
else()
  message(STATUS "serve_web_page not registered: no node")
endif()

# CORS in chromium: a page on another origin calls the API (JSON POST with a key, streamed and not, GET models);
# refused without --cors and for origins not listed, read with --cors naming the page's origin or '*'.
if(MT_NODE)
  add_test(NAME serve_cors COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/cors.mjs $<TARGET_FILE:mitten_cli>)
  set_tests_properties(serve_cors PROPERTIES LABELS serve TIMEOUT 120)
endif()

# mitten serve through the official openai npm client on the shipped tiny model (answers checked against mitten run).
if(MT_NODE)
  add_test(NAME serve_openai_client
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/openai_client.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR})
  set_tests_properties(serve_openai_client PROPERTIES LABELS serve TIMEOUT 300)
endif()

# Bad requests (malformed JSON, wrong types, huge numbers, bad images, path escapes, slow clients, header floods):
# each gets its error and the server keeps serving.
if(MT_NODE)
  add_test(NAME serve_bad_input
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/bad_input.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/serve-bad-input)
  set_tests_properties(serve_bad_input PROPERTIES LABELS serve TIMEOUT 120)
endif()

# video_url parts through the openai client (tests/serve/video.mjs): data URLs and allowed files answered as
# `mitten run --video` answers, no temporary copy left, bad videos refused with 400 while the server keeps serving.
# SKIP without the ffmpeg command.
if(MT_NODE)
  add_test(NAME serve_video
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/video.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR}
                   ${CMAKE_CURRENT_BINARY_DIR}/serve-video)
  set_tests_properties(serve_video PROPERTIES LABELS serve TIMEOUT 180 SKIP_RETURN_CODE 77)
endif()

# 64 streaming clients for 60 s: no failures, RSS stops growing, a clean SIGTERM (label load: the longest test).
if(MT_NODE)
  add_test(NAME serve_load
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/load.mjs $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR} 60 64)
  set_tests_properties(serve_load PROPERTIES LABELS "serve;load" TIMEOUT 300)
endif()

# Tool calls with a model that makes them. serve_tools_model (fixture) fine-tunes a copy of models/mitten-tiny with
# the Hermes-style template of tests/serve/tools on its train.jsonl (OpenAI-form tools, tool_calls and tool turns
# through the training data loader) until every answer is memorised; serve_tools then drives `mitten serve` on it
# with the openai client (tool_calls whole and streamed, the round trip, tool_choice none) and LangChain's
# ChatOpenAI (bindTools, streamed, ToolMessage).
add_test(NAME serve_tools_model
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/tools/make_model.sh $<TARGET_FILE:mitten_cli> ${CMAKE_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/serve-tools-model)
set_tests_properties(serve_tools_model PROPERTIES LABELS serve TIMEOUT 300 FIXTURES_SETUP serve_tools_model)
if(MT_NODE)
  add_test(NAME serve_tools
           COMMAND ${MT_NODE} ${CMAKE_CURRENT_LIST_DIR}/tools.mjs $<TARGET_FILE:mitten_cli>
                   ${CMAKE_CURRENT_BINARY_DIR}/serve-tools-model/run/model)
  set_tests_properties(serve_tools PROPERTIES LABELS serve TIMEOUT 180 FIXTURES_REQUIRED serve_tools_model)
endif()
