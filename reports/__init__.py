"""Run artefacts: timeline plots and gap summaries for Allure."""
