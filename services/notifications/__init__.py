"""The notifications service: confirmations, reminders, "you are called" and survey invitations."""
