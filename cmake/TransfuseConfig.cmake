# find_package(Transfuse) from an installed prefix (`cmake --install`):
#   TRANSFUSE_COMPILER     the `transfuse` compiler
#   Transfuse::headers     the C API header, transfuse/transfuse.h
#   transfuse_add_model(<name> <model.onnx> [OPTIONS <option>...])
#       compiles <model.onnx> with `transfuse compile <model.onnx> -o
#       lib<name>.so <option>...` into the current binary directory at build
#       time (again when the model or the compiler changes), and defines the
#       target <name>: linking it links lib<name>.so and the header.
# Example (test/install/consumer/CMakeLists.txt):
#   find_package(Transfuse REQUIRED)
#   transfuse_add_model(bert model.onnx OPTIONS --dim batch=1)
#   target_link_libraries(app PRIVATE bert)
get_filename_component(_transfuse_prefix "${CMAKE_CURRENT_LIST_DIR}/../../.."
                       ABSOLUTE)
set(TRANSFUSE_COMPILER "${_transfuse_prefix}/bin/transfuse")
if(NOT EXISTS "${TRANSFUSE_COMPILER}")
  set(Transfuse_FOUND FALSE)
  set(Transfuse_NOT_FOUND_MESSAGE
      "the Transfuse compiler is missing at ${TRANSFUSE_COMPILER}")
  return()
endif()
if(NOT TARGET Transfuse::headers)
  add_library(Transfuse::headers INTERFACE IMPORTED)
  set_target_properties(Transfuse::headers PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${_transfuse_prefix}/include")
endif()

function(transfuse_add_model name model)
  cmake_parse_arguments(PARSE_ARGV 2 arg "" "" "OPTIONS")
  if(arg_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "transfuse_add_model(${name}): unexpected arguments "
                        "${arg_UNPARSED_ARGUMENTS} (compiler options go after "
                        "OPTIONS)")
  endif()
  get_filename_component(model "${model}" ABSOLUTE)
  if(NOT EXISTS "${model}")
    message(FATAL_ERROR "transfuse_add_model(${name}): no model at ${model}")
  endif()
  set(lib "${CMAKE_CURRENT_BINARY_DIR}/lib${name}.so")
  add_custom_command(
    OUTPUT "${lib}"
    COMMAND "${TRANSFUSE_COMPILER}" compile "${model}" -o "${lib}"
            ${arg_OPTIONS}
    DEPENDS "${model}" "${TRANSFUSE_COMPILER}"
    COMMENT "Compiling ${model} with Transfuse"
    VERBATIM)
  add_custom_target(${name}_transfuse_compile DEPENDS "${lib}")
  # The library's soname is its file name (transfuse compile sets it).
  add_library(${name} SHARED IMPORTED GLOBAL)
  set_target_properties(${name} PROPERTIES
    IMPORTED_LOCATION "${lib}"
    IMPORTED_SONAME "lib${name}.so"
    INTERFACE_LINK_LIBRARIES Transfuse::headers)
  add_dependencies(${name} ${name}_transfuse_compile)
endfunction()
