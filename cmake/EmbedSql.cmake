# labelloop_embed_sql(TARGET_VAR NAMESPACE DIR): compiles every DIR/NNNN_name.sql into a
# generated .cpp exposing `std::vector<labelloop::migrate::Migration> <NAMESPACE>::Migrations()`,
# so a service binary carries its own migrations and needs no files at run time.
function(labelloop_embed_sql out_var ns dir)
  file(GLOB sql_files CONFIGURE_DEPENDS ${dir}/*.sql)
  list(SORT sql_files)
  string(REPLACE "::" "_" file_stem "${ns}")
  set(out ${CMAKE_CURRENT_BINARY_DIR}/${file_stem}_migrations.cpp)
  # The list of files, rewritten only when it changes: a migration removed or renamed makes
  # the output stale too (the remaining files alone are older than it).
  set(list_file ${CMAKE_CURRENT_BINARY_DIR}/${file_stem}_migrations.list)
  string(JOIN "\n" sql_list ${sql_files})
  file(CONFIGURE OUTPUT ${list_file} CONTENT "${sql_list}\n")
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DNS=${ns} -DDIR=${dir}
            -P ${PROJECT_SOURCE_DIR}/cmake/EmbedSqlScript.cmake
    DEPENDS ${sql_files} ${list_file} ${PROJECT_SOURCE_DIR}/cmake/EmbedSqlScript.cmake
    COMMENT "Embedding ${ns} migrations")
  set(${out_var} ${out} PARENT_SCOPE)
endfunction()
