# mgo-kube, the controller, end to end against the real kube-apiserver and etcd: the upstream
# sample converges to exactly the render oracle's objects, steady state writes nothing, spec
# edits (scale up/down with drains, resources), owned objects recreated, an invalid spec,
# apiserver restart, watches resumed from a compacted revision, status conflicts, and two
# replicas with leader election (test_kube_controller.py, support in mgokube.py).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  add_test(NAME kube_controller
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/run_with_apiserver.sh ${Python3_EXECUTABLE}
                   ${CMAKE_CURRENT_SOURCE_DIR}/test_kube_controller.py
                   $<TARGET_FILE:mgo-kube> $<TARGET_FILE:mgo-cli>)
  set_tests_properties(kube_controller PROPERTIES
                       ENVIRONMENT "${MGO_TEST_ENV}" TIMEOUT 900 RESOURCE_LOCK real_servers
                       FIXTURES_REQUIRED kube_apiserver LABELS kube)
elseif(MGO_REQUIRE_HOSTS)
  message(FATAL_ERROR "python3 not found, and MGO_REQUIRE_HOSTS is set")
else()
  message(STATUS "python3 not found: kube_controller is not registered")
endif()

# mgo-kube losing its leader Lease with a write in flight (test_kube_leader_loss.py, through the
# TLS proxy kproxy.py): the write is dropped, not carried out, nothing is sent after the loss,
# the process exits 1 within seconds and leaves the Lease alone.
if(Python3_Interpreter_FOUND)
  add_test(NAME kube_leader_loss
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/run_with_apiserver.sh ${Python3_EXECUTABLE}
                   ${CMAKE_CURRENT_SOURCE_DIR}/test_kube_leader_loss.py
                   $<TARGET_FILE:mgo-kube> $<TARGET_FILE:mgo-cli>)
  set_tests_properties(kube_leader_loss PROPERTIES
                       ENVIRONMENT "${MGO_TEST_ENV}" TIMEOUT 600 RESOURCE_LOCK real_servers
                       FIXTURES_REQUIRED kube_apiserver LABELS kube)
endif()

# mgo-kube's pgBackRest certificates (test_kube_certs.py): issued into the two Secrets the pods
# mount, judged by openssl and a mutual TLS handshake; no writes in steady state; a deleted,
# expiring or foreign certificate and an unreadable CA are replaced.
if(Python3_Interpreter_FOUND)
  add_test(NAME kube_certs
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/run_with_apiserver.sh ${Python3_EXECUTABLE}
                   ${CMAKE_CURRENT_SOURCE_DIR}/test_kube_certs.py
                   $<TARGET_FILE:mgo-kube> $<TARGET_FILE:mgo-cli>)
  set_tests_properties(kube_certs PROPERTIES
                       ENVIRONMENT "${MGO_TEST_ENV}" TIMEOUT 600 RESOURCE_LOCK real_servers
                       FIXTURES_REQUIRED kube_apiserver LABELS kube)
endif()
