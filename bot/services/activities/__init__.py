"""The activities feature (活动): lectures, annual meetings, site visits, trainings; sign-ups, reminders, charter
duties, calendar feeds and Chinese date phrases."""
