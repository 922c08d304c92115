# Installs the `orbitai` Python package (sources, the modules' Logics and requirements, bundled models, schemas,
# radiomics protocols, atlas data) next to the
# scripted modules, so `import orbitai` works inside Slicer without pip.
file(GLOB_RECURSE ORBITAI_CORE_PY RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} orbitai/*.py)
file(GLOB_RECURSE ORBITAI_CORE_DATA RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}
  orbitai/data/* orbitai/resources/* orbitai/bundle/schemas/* orbitai/radiomics/params/*.yaml
  orbitai/app/requirements/*.txt orbitai/web/static/*)

ctkMacroCompilePythonScript(
  TARGET_NAME OrbitAICore
  SCRIPTS "${ORBITAI_CORE_PY}"
  RESOURCES "${ORBITAI_CORE_DATA}"
  DESTINATION_DIR ${CMAKE_BINARY_DIR}/${Slicer_QTSCRIPTEDMODULES_LIB_DIR}
  INSTALL_DIR ${Slicer_INSTALL_QTSCRIPTEDMODULES_LIB_DIR}
  NO_INSTALL_SUBDIR
  )
