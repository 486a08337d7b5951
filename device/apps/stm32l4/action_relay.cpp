#include "action_relay.h"

namespace tinyfleet::app {

void ActionRelay::perform(const Action& a) {
  switch (a.type) {
    case ActionType::RunHealthCheck: health_check_due = true; break;
    case ActionType::Reboot: reboot_due = true; break;
    default: transport_.send(a); break;
  }
}

}  // namespace tinyfleet::app
