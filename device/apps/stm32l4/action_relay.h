// The agent's ActionSink in the STM32L476 application: messages go to the transport as the agent decides
// them; a health check or reboot is noted here and done by the application loop once the event has returned
// (ActionSink's contract: perform() never calls back into the agent).
#pragma once

#include "app_ports.h"

namespace tinyfleet::app {

class ActionRelay final : public ActionSink {
 public:
  explicit ActionRelay(Transport& transport) : transport_(transport) {}
  void perform(const Action& a) override;

  bool health_check_due = false;
  bool reboot_due = false;

 private:
  Transport& transport_;
};

}  // namespace tinyfleet::app
