# Bad checkpoints, configs, token ids and images on the model path: clear messages, exit 1, no crash.
add_test(NAME model_bad_input
         COMMAND ${MT_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/bad_input.py --mitten $<TARGET_FILE:mitten_cli>
                 --work ${CMAKE_BINARY_DIR}/model-bad-input)
set_tests_properties(model_bad_input PROPERTIES LABELS ref TIMEOUT 300 ENVIRONMENT PYTHONDONTWRITEBYTECODE=1)
